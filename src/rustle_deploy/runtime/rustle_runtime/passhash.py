"""ansible.builtin's ``password_hash`` filter on the host, standard library only.

ansible-core 2.19 hashes with passlib (``ansible.utils.encrypt.PasslibHash``); its output is
the crypt(3) string (``$6$rounds=656000$salt$hash``). Here the host's ``crypt`` module does it
where the Python has one (up to 3.12) and the C library knows the method; otherwise the
algorithms are computed in Python: MD5-crypt and SHA-crypt (Ulrich Drepper's specification),
which give the same strings. bcrypt needs the C library (``crypt`` with ``$2b$``).
"""

import hashlib
import random
import string
import warnings

# Ansible's names -> passlib's, and passlib's defaults as ansible-core pins them
# (encrypt.BaseHash.algorithms): crypt id, salt size, rounds used when none is given
_MAPPING = {"md5": "md5_crypt", "blowfish": "bcrypt", "sha256": "sha256_crypt", "sha512": "sha512_crypt"}
_ALGORITHMS = {
    "md5_crypt": ("1", 8, None),
    "bcrypt": ("2b", 22, 12),
    "sha256_crypt": ("5", 16, 535000),
    "sha512_crypt": ("6", 16, 656000),
}
_SALT_CHARS = string.ascii_letters + string.digits + "./"
_B64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


SALT_CHARS = _SALT_CHARS


def salt_size(hashtype):
    """The salt length ansible-core's password lookup makes for ``hashtype`` (a passlib name;
    8 for any other, as its ``random_salt()``)."""
    return _ALGORITHMS[hashtype][1] if hashtype in _ALGORITHMS else 8


def implicit_ident(hashtype):
    """The ``ident`` ansible-core's password lookup stores for ``hashtype`` (bcrypt's ``2b``)."""
    return "2b" if hashtype == "bcrypt" else None


class HashError(Exception):
    """The arguments do not name a hash this host can compute (the message says why)."""


def password_hash(password, hashtype="sha512", salt=None, salt_size=None, rounds=None, ident=None):
    algorithm = _MAPPING.get(hashtype, hashtype)
    if algorithm not in _ALGORITHMS:
        raise HashError(f"{hashtype} is not in the list of supported passlib algorithms: "
                        f"{', '.join(_MAPPING)}")
    crypt_id, default_salt_size, default_rounds = _ALGORITHMS[algorithm]
    if salt_size is not None and not isinstance(salt_size, int):
        raise HashError("salt_size must be an integer")
    secret = str(password).encode("utf-8")
    if salt:
        salt = str(salt)
        if any(c not in _SALT_CHARS for c in salt):
            raise HashError(f"Could not hash the secret: invalid characters in {algorithm} salt")
        if len(salt) > default_salt_size:
            raise HashError(f"Could not hash the secret: salt too large ({algorithm} requires "
                            f"<= {default_salt_size} chars)")
    else:
        salt = "".join(random.SystemRandom().choice(_SALT_CHARS)
                       for _ in range(salt_size or default_salt_size))
    rounds = int(rounds) if rounds else default_rounds
    if algorithm == "bcrypt":
        setting = f"${ident or crypt_id}${rounds:02d}${salt}"
        return _crypt(secret, setting, "bcrypt")
    if algorithm == "md5_crypt":
        return _md5_crypt(secret, salt.encode("ascii"))
    if not 1000 <= rounds <= 999999999:
        raise HashError("Could not hash the secret: rounds must be between 1000 and 999999999")
    setting = f"${crypt_id}${_rounds(rounds)}{salt}"
    try:
        return _crypt(secret, setting, algorithm)
    except HashError:
        return _sha_crypt(secret, salt.encode("ascii"), rounds, crypt_id)


def _crypt(secret, setting, algorithm):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        result = crypt.crypt(secret.decode("utf-8"), setting)
    except (ImportError, OSError, UnicodeDecodeError):
        result = None
    if not result or not result.startswith(setting):
        raise HashError(f"Unable to hash with {algorithm} on this host: its Python has no crypt "
                        "module or its C library lacks the method")
    return result


def _encode(data, triples, tail):
    """crypt's base 64 of the digest: each triple's bytes (first the high one), then the tail."""
    out = []
    for b0, b1, b2 in triples:
        value = data[b0] << 16 | data[b1] << 8 | data[b2]
        out.append("".join(_B64[(value >> (6 * k)) & 0x3f] for k in range(4)))
    if tail is not None:
        value = 0
        for i in tail:
            value = value << 8 | data[i]
        n = (len(tail) * 8 + 5) // 6
        out.append("".join(_B64[(value >> (6 * k)) & 0x3f] for k in range(n)))
    return "".join(out)


def _sha_crypt(secret, salt, rounds, crypt_id):
    new = hashlib.sha512 if crypt_id == "6" else hashlib.sha256
    size = new().digest_size  # steps as numbered in Drepper's specification
    b = new(secret + salt + secret).digest()
    a = new(secret + salt)
    a.update(_repeat(b, len(secret), size))
    n = len(secret)
    while n:
        a.update(b if n & 1 else secret)
        n >>= 1
    a = a.digest()
    dp = _repeat(new(secret * len(secret)).digest(), len(secret), size)
    ds = _repeat(new(salt * (16 + a[0])).digest(), len(salt), size)
    c = _mix(new, a, dp, ds, rounds)
    order, tail = (_SHA512_ORDER, (63,)) if crypt_id == "6" else (_SHA256_ORDER, (31, 30))
    body = _encode(c, order, tail)
    return f"${crypt_id}${_rounds(rounds)}{salt.decode('ascii')}${body}"


def _rounds(rounds):
    """The setting's ``rounds=N$`` (left out for the specification's default, as passlib does)."""
    return "" if rounds == 5000 else f"rounds={rounds}$"


def _mix(new, c, p, s, rounds):
    """The rounds MD5-crypt and SHA-crypt share: each digests the last one with ``p`` (the
    password's bytes) and ``s`` (the salt's) by the round's number."""
    for i in range(rounds):
        h = new(p if i & 1 else c)
        if i % 3:
            h.update(s)
        if i % 7:
            h.update(p)
        h.update(c if i & 1 else p)
        c = h.digest()
    return c


def _repeat(digest, length, size):
    return digest * (length // size) + digest[:length % size]


def _md5_crypt(secret, salt):
    b = hashlib.md5(secret + salt + secret).digest()
    a = hashlib.md5(secret + b"$1$" + salt)
    a.update(_repeat(b, len(secret), 16))
    n = len(secret)
    while n:
        a.update(b"\0" if n & 1 else secret[:1])
        n >>= 1
    c = _mix(hashlib.md5, a.digest(), secret, salt, 1000)
    order = [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)]
    return "$1$" + salt.decode("ascii") + "$" + _encode(c, order, (11,))


# the digest's bytes in the order SHA-crypt encodes them
_SHA512_ORDER = [
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26), (6, 27, 48),
    (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32), (12, 33, 54),
    (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60),
    (40, 61, 19), (62, 20, 41),
]
_SHA256_ORDER = [
    (0, 10, 20), (21, 1, 11), (12, 22, 2), (3, 13, 23), (24, 4, 14), (15, 25, 5), (6, 16, 26),
    (27, 7, 17), (18, 28, 8), (9, 19, 29),
]
