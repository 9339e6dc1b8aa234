"""README.txt, the bundle's first member: how a hoster without ruche checks and loads it by hand."""

from __future__ import annotations

from orchestrator.signing import PREFIX

README_TEXT = f"""\
ruche bundle, format 1
======================

This archive holds an association's data as its hosting collective exported it with ruche
(`ruche association export`), so that another host can take the association in: with ruche
(`ruche association import FILE --trust KEY`) or by hand, with the steps below.

Files (all under ruche-bundle/):
  README.txt                      this text
  instances/NAME/manifest.json    what instance NAME held when exported: its files' checksums and
                                  owners, its database tables' row counts
  instances/NAME/database.sql     its database as a plain SQL dump (pg_dump or mariadb-dump), if it has one
  instances/NAME/volumes.tar      its files, volumes/VOLUME/... for each volume; owners are numbered inside
                                  the instance's own user namespace (uid 0 = the container's root)
  manifest.json                   the association, each instance (service, version, size, parameters,
                                  domains, database engine), and the SHA-256 and size of every file above
  manifest.sig                    the sending collective's Ed25519 signature of manifest.json's bytes

Application secrets (passwords, keys) are never in the bundle in clear: they are left out (set new
ones where you install the services), or sealed in manifest.json's "secrets" for the receiving
collective's key, which only its ruche opens.

Check the checksums, from the directory holding ruche-bundle/, with jq:

  cd ruche-bundle && jq -r '.members | to_entries[] | "\\(.value.sha256)  \\(.key)"' manifest.json | sha256sum -c

or with Python 3 alone:

  python3 - <<'EOF'
  import hashlib, json, pathlib
  root = pathlib.Path("ruche-bundle")
  for name, want in json.loads((root / "manifest.json").read_bytes())["members"].items():
      digest = hashlib.sha256()
      with open(root / name, "rb") as handle:
          for block in iter(lambda: handle.read(1 << 20), b""):
              digest.update(block)
      print("OK  " if digest.hexdigest() == want["sha256"] else "BAD ", name)
  EOF

Check the signature (Python 3 with the `cryptography` package; the argument is the sending
collective's public key, '{PREFIX}BASE64', which it gives you itself: `ruche key show` prints it;
its first 32 bytes are the Ed25519 key that signs):

  python3 - '{PREFIX}...' <<'EOF'
  import base64, json, pathlib, sys
  from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
  root = pathlib.Path("ruche-bundle")
  key = Ed25519PublicKey.from_public_bytes(base64.b64decode(sys.argv[1].split(":", 1)[1])[:32])
  signature = json.loads((root / "manifest.sig").read_text())["signature"]
  key.verify(base64.b64decode(signature), (root / "manifest.json").read_bytes())  # raises if it does not match
  print("signature OK")
  EOF

Load a dump:
  PostgreSQL:  psql -v ON_ERROR_STOP=1 -d DATABASE -f ruche-bundle/instances/NAME/database.sql
  MariaDB:     mariadb DATABASE < ruche-bundle/instances/NAME/database.sql
Unpack files:  tar --extract --numeric-owner --file ruche-bundle/instances/NAME/volumes.tar --directory DIR
  (as root; add the first host uid of the service's user namespace to each owner, or unpack inside
  `podman unshare` so that the owners map into your rootless user's range.)

The full description of the format: docs/bundle-format.md in ruche's sources.
"""
