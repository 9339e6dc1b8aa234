"""The bundle format (version 1): an association's data signed by its collective, for another collective's ruche.

A bundle is a gzip-compressed POSIX (pax) tar, written and read as a stream so that a bundle larger than memory is
never held in it (members are copied and hashed in blocks of 1 MiB). Its members, all under ``ruche-bundle/``, come
in this order:

- ``README.txt``: what each file is and how to check and load them by hand (for a hoster without ruche);
- ``instances/NAME/...``: each instance's data (``database.sql``, ``manifest.json``, ``volumes.tar``, ...);
- ``manifest.json``: :class:`BundleManifest` as JSON with sorted keys, in UTF-8, listing the SHA-256 and size of
  every member before it;
- ``manifest.sig``: the Ed25519 signature of manifest.json's exact bytes by the collective's key (orchestrator.signing).

Every tar a bundle brings (the bundle, each instance's volumes.tar) is read with ``tarfile.open(...,
tarinfo=BoundedTarInfo)``: tar headers bounded, sparse members refused, before any signature is checked.

:class:`BundleWriter` writes one, :func:`verify_bundle` checks one in a single pass (the signature before anything the
manifest says is believed), :func:`read_members` gives its data to an importer while checking it again (the file may
change between the two passes). docs/bundle-format.md describes the format for a receiving hoster without ruche.
"""

from orchestrator.bundles.format import (
    FORMAT,
    ROOT,
    BoundedTarInfo,
    BundleAssociation,
    BundleInstance,
    BundleManifest,
    BundleSecrets,
    MemberDigest,
    SealedBox,
    VerifiedBundle,
    data_name_problem,
    manifest_json,
    manifest_problems,
    signature_json,
)
from orchestrator.bundles.reader import read_members, verify_bundle
from orchestrator.bundles.writer import BundleWriter

__all__ = [
    "FORMAT", "ROOT", "BoundedTarInfo", "BundleAssociation", "BundleInstance", "BundleManifest", "BundleSecrets", "BundleWriter",
    "MemberDigest", "SealedBox", "VerifiedBundle", "data_name_problem", "manifest_json", "manifest_problems",
    "read_members", "signature_json", "verify_bundle",
]  # fmt: skip
