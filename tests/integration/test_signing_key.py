"""The collective's signing key (bundles): made by `ruche init`, shown by `ruche key show`, its private part kept
only as vault ciphertext; `ruche key create` for a workspace made before keys existed."""

import base64
import json
import shutil

from orchestrator.signing import PRIVATE_FILE, PUBLIC_FILE, PublicKey, signing_key
from orchestrator.workspace import open_workspace


def test_init_makes_a_key_whose_private_part_only_the_vault_opens(workspace, ruche):
    w = ["--workspace", str(workspace)]
    shown = ruche(*w, "key", "show", "--json")
    assert shown.exit_code == 0, shown.stderr
    view = json.loads(shown.stdout)
    public = PublicKey.from_text(view["public_key"])
    assert view["key_id"] == public.key_id and len(view["key_id"]) == 32
    text = ruche(*w, "key", "show")
    assert text.stdout == view["public_key"] + "\n" and view["key_id"] in text.stderr
    private_file = workspace / PRIVATE_FILE
    assert private_file.stat().st_mode & 0o777 == 0o600
    assert private_file.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256")
    opened = open_workspace(workspace)
    key = signing_key(opened.root, opened.vault())
    for part in json.loads(key.private_text()).values():
        assert (
            base64.b64decode(part) not in private_file.read_bytes() and part.encode() not in private_file.read_bytes()
        )
    assert key.public == public and public.verifies(b"a bundle's manifest", key.sign(b"a bundle's manifest"))
    assert not public.verifies(b"another manifest", key.sign(b"a bundle's manifest"))


def test_a_workspace_without_a_key_is_told_how_to_make_one_and_a_second_key_is_refused(workspace, ruche):
    w = ["--workspace", str(workspace)]
    before = ruche(*w, "key", "show").stdout
    shutil.rmtree(workspace / PUBLIC_FILE.parent)
    missing = ruche(*w, "key", "show")
    assert missing.exit_code == 6 and "no signing key" in missing.stderr and "ruche key create" in missing.stderr
    made = ruche(*w, "key", "create", "--json")
    assert made.exit_code == 0, made.stderr
    assert json.loads(made.stdout)["public_key"] != before.strip()  # a new key
    again = ruche(*w, "key", "create")
    assert again.exit_code == 5 and "already" in again.stderr
    assert ruche(*w, "key", "show").stdout.strip() == json.loads(made.stdout)["public_key"]  # the refusal kept it


def test_a_public_key_that_is_not_one_is_refused_with_what_a_key_looks_like():
    import pytest

    from orchestrator.errors import InvalidInput

    for text, said in (("ssh-ed25519 AAAA", "does not start with"), ("ruche-key:%%%", "not valid base64"),
                       ("ruche-key:" + base64.b64encode(b"short").decode(), "64 bytes, this one 5")):  # fmt: skip
        with pytest.raises(InvalidInput) as refused:
            PublicKey.from_text(text, source="--trust")
        assert said in str(refused.value) and str(refused.value).startswith("--trust:")


def test_secrets_sealed_for_a_key_open_with_that_key_only():
    import pytest

    from orchestrator.errors import InvalidInput
    from orchestrator.signing import SigningKey

    receiver, other = SigningKey.generate(), SigningKey.generate()
    sealed = receiver.public.seal(b'{"admin_password": "s3cret"}')
    assert b"s3cret" not in json.dumps(sealed).encode()
    assert receiver.open(sealed) == b'{"admin_password": "s3cret"}'
    assert receiver.public.seal(b"x") != receiver.public.seal(b"x")  # a fresh ephemeral key and nonce each time
    flipped = dict(sealed, ciphertext=base64.b64encode(bytes([base64.b64decode(sealed["ciphertext"])[0] ^ 1])
                                                       + base64.b64decode(sealed["ciphertext"])[1:]).decode())  # fmt: skip
    for wrong_key, box in ((other, sealed), (receiver, flipped), (receiver, {"nonce": "x"})):
        with pytest.raises(InvalidInput) as refused:
            wrong_key.open(box)
        assert "do not open with this collective's key" in str(refused.value)
    restored = SigningKey.from_private_text(receiver.private_text())
    assert restored.public == receiver.public and restored.open(sealed) == receiver.open(sealed)
