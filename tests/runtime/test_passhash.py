"""password_hash on the host (rustle_runtime/passhash.py) gives passlib's strings, which is what
ansible-core 2.19's filter returns; both the C library's crypt and the Python fallback (for a
host Python without the crypt module, 3.13+) are checked."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "src" / "rustle_deploy" / "runtime"
if str(RUNTIME) not in sys.path:
    sys.path.insert(0, str(RUNTIME))

from rustle_runtime import passhash  # noqa: E402

pytestmark = pytest.mark.ansible

CASES = [
    ("", "sha512", "saltstring", 5000), ("Hello world!", "sha512", "saltstring", 5000),
    ("Hello world!", "sha512", "saltstringsaltst", 10000), ("pä" * 40, "sha512", "a", 1000),
    ("", "sha256", "saltstring", 5000), ("Hello world!", "sha256", "rounds", 12345),
    ("x" * 70, "sha256", "./Az09", 1000),
]


def passlib_hash(*args, **kwargs):
    from ansible.plugins.filter.core import get_encrypted_password

    return get_encrypted_password(*args, **kwargs)


@pytest.mark.parametrize(("secret", "hashtype", "salt", "rounds"), CASES)
def test_sha_crypt_in_python_is_passlibs(secret, hashtype, salt, rounds):
    expected = passlib_hash(secret, hashtype, salt=salt, rounds=rounds)
    crypt_id = "6" if hashtype == "sha512" else "5"
    assert passhash._sha_crypt(secret.encode(), salt.encode(), rounds, crypt_id) == expected
    assert passhash.password_hash(secret, hashtype, salt=salt, rounds=rounds) == expected


@pytest.mark.parametrize("secret", ["", "a", "Hello world!", "x" * 70])
def test_md5_crypt_in_python_is_passlibs(secret):
    expected = passlib_hash(secret, "md5", salt="saltsalt")
    assert passhash._md5_crypt(secret.encode(), b"saltsalt") == expected
    assert passhash.password_hash(secret, "md5_crypt", salt="saltsalt") == expected


def test_defaults_are_ansibles_rounds_and_salt_size():
    value = passhash.password_hash("pw")
    prefix, salt = value.rsplit("$", 1)[0].rsplit("$", 1)
    assert prefix == "$6$rounds=656000" and len(salt) == 16
    assert value == passlib_hash("pw", salt=salt)
    assert passhash.password_hash("pw", "sha256", salt="s").startswith("$5$rounds=535000$s$")


def test_bad_arguments_say_why():
    with pytest.raises(passhash.HashError, match="nope is not in the list of supported passlib algorithms: md5, blowfish"):
        passhash.password_hash("pw", "nope")
    with pytest.raises(passhash.HashError, match="salt_size must be an integer"):
        passhash.password_hash("pw", salt_size="8")
    with pytest.raises(passhash.HashError, match="invalid characters"):
        passhash.password_hash("pw", salt="a$b")
    with pytest.raises(passhash.HashError, match=r"salt too large \(sha512_crypt requires <= 16 chars\)"):
        passhash.password_hash("pw", salt="s" * 17)
