"""A small authoritative DNS server for tests: answers, over UDP on 127.0.0.1, from zone-file lines.

Real DNS on the wire (dnspython's messages), so that what ruche resolves goes through its real resolver.
Names it holds no record for answer NXDOMAIN.
"""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class ZoneServer:
    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.records: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()
        return f"{host}:{port}"

    def load(self, lines: list[str]) -> None:
        """Serve exactly the records of ``lines`` (``NAME. TTL IN TYPE VALUE``)."""
        records: dict = {}
        for line in lines:
            name, ttl, _class, kind, value = line.split(maxsplit=4)
            rdtype = dns.rdatatype.from_text(kind)
            key = (dns.name.from_text(name), rdtype)
            rrset = records.setdefault(key, dns.rrset.RRset(key[0], dns.rdataclass.IN, rdtype))
            rrset.add(dns.rdata.from_text(dns.rdataclass.IN, rdtype, value), int(ttl))
        self.records = records

    def __enter__(self) -> ZoneServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, client = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            question = query.question[0]
            records = self.records
            name = question.name
            for _hop in range(8):  # follow CNAMEs inside the zone
                cname = records.get((name, dns.rdatatype.CNAME))
                if cname is None or question.rdtype == dns.rdatatype.CNAME:
                    break
                response.answer.append(cname)
                name = cname[0].target
            answer = records.get((name, question.rdtype))
            if answer is not None:
                response.answer.append(answer)
            elif not response.answer and not any(key[0] == name for key in records):
                response.set_rcode(dns.rcode.NXDOMAIN)
            self._socket.sendto(response.to_wire(), client)
