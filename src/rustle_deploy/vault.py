"""Ansible Vault: values and files encrypted by ``ansible-vault``, decrypted on the controller.

The format is Ansible's 1.1/1.2 (``$ANSIBLE_VAULT;1.1;AES256`` or ``1.2;AES256;LABEL``): the
body is hex of ``hex(salt) \\n hex(hmac) \\n hex(ciphertext)``; PBKDF2-HMAC-SHA256 (10,000
rounds) of the password and salt gives 80 bytes: the AES-256 key, the HMAC-SHA256 key and the
CTR counter block; the plaintext is PKCS#7-padded. A value is decrypted with the first secret
whose HMAC matches (a 1.2 label is not needed to find it), as ansible-core tries its secrets.

The secrets come from the command line (``--vault-password-file``, ``--vault-id``,
``--ask-vault-pass``) or ``ANSIBLE_VAULT_PASSWORD_FILE``; :func:`use_secrets` sets them for the
loaders (playbook files, vars files, inventory variables) before anything is read. Decrypted
values never appear in an error message. Imports: errors only (and ``cryptography``).
"""

from __future__ import annotations

import binascii
import os
import subprocess
from collections.abc import Iterable

from rustle_deploy.errors import UsageError

__all__ = ["HEADER", "VaultFailed", "decrypt", "decrypt_bytes", "is_encrypted", "secret_from_file", "secrets", "use_secrets"]

HEADER = "$ANSIBLE_VAULT;"
_SECRETS: list[tuple[str, bytes]] = []  # (label, password), in the order given


class VaultFailed(Exception):
    """Why a vaulted text could not be decrypted (the caller adds where it was written)."""

    def __init__(self, message: str, hint: str, locked: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # no secret opens it (none given, or none matches): ansible-core's words for it. Such a
        # !vault value is loaded as undecryptable and fails only the tasks that use it
        self.locked = locked


def use_secrets(secrets: Iterable[tuple[str, bytes]]) -> None:
    """The vault passwords the loaders decrypt with from now on (replacing any before)."""
    _SECRETS[:] = list(secrets)


def secrets() -> list[tuple[str, bytes]]:
    """The vault secrets given to this command (label, password)."""
    return list(_SECRETS)


def is_encrypted(text: str) -> bool:
    return text.lstrip().startswith(HEADER)


def file_locked(path: str) -> VaultFailed | None:
    """Why no vault secret of the run opens the vault-encrypted file ``path`` (its
    ``VaultFailed``, whose ``locked`` is set); None for a file that opens, or is not encrypted,
    or cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    if not is_encrypted(text):
        return None
    try:
        decrypt(text)
    except VaultFailed as exc:
        return exc if exc.locked is not None else None
    return None


def secret_from_file(path: str, label: str = "default") -> tuple[str, bytes]:
    """A password file as ansible-core reads one: its text without surrounding whitespace, or,
    when the file is executable, what the script prints."""
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise UsageError(f"the vault password file {path} was not found",
                         "pass an existing file to --vault-password-file/--vault-id")
    if os.access(path, os.X_OK):
        try:
            proc = subprocess.run([path], capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UsageError(f"the vault password script {path} could not be run: {exc}",
                             None) from exc
        if proc.returncode != 0:
            raise UsageError(f"the vault password script {path} exited {proc.returncode}",
                             proc.stderr.decode("utf-8", "replace").strip()[-300:] or None)
        data = proc.stdout
    else:
        with open(path, "rb") as fh:
            data = fh.read()
    password = data.strip()
    if not password:
        raise UsageError(f"the vault password file {path} is empty",
                         "put the password in it, on one line")
    return label, password


def decrypt(text: str) -> str:
    """The plaintext of an ``ansible-vault`` envelope; VaultFailed without a matching secret."""
    try:
        return decrypt_bytes(text).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VaultFailed("the vault data decrypts to something that is not UTF-8 text",
                          "encrypt text with ansible-vault") from exc


def decrypt_bytes(text: str) -> bytes:
    """The plaintext bytes of an ``ansible-vault`` envelope (an encrypted file: a copy
    ``src``, a template); VaultFailed without a matching secret."""
    lines = text.strip().splitlines()
    header = lines[0].strip().split(";") if lines else []
    if len(header) < 3 or header[0] != HEADER[:-1] or header[1] not in ("1.1", "1.2"):
        raise VaultFailed("not an ansible-vault envelope (expected $ANSIBLE_VAULT;1.1;AES256 "
                          "or 1.2;AES256;LABEL)", "encrypt it with ansible-vault")
    if header[2].strip() != "AES256":
        raise VaultFailed(f"vault cipher {header[2].strip()!r} is not supported",
                          "ansible-vault encrypts with AES256")
    try:
        body = binascii.unhexlify("".join(line.strip() for line in lines[1:]))
        salt_hex, hmac_hex, cipher_hex = body.split(b"\n", 2)
        salt = binascii.unhexlify(salt_hex)
        expected = binascii.unhexlify(hmac_hex)
        ciphertext = binascii.unhexlify(cipher_hex)
    except (binascii.Error, ValueError) as exc:
        raise VaultFailed("the vault envelope is damaged (not the hex ansible-vault writes)",
                          "encrypt it again with ansible-vault") from exc
    if not _SECRETS:
        raise VaultFailed("no vault secret was given",
                          "pass --vault-password-file FILE, --vault-id, --ask-vault-pass or "
                          "set ANSIBLE_VAULT_PASSWORD_FILE",
                          locked="Attempting to decrypt but no vault secrets found.")
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, hmac, padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    for _label, password in _SECRETS:
        key = PBKDF2HMAC(algorithm=hashes.SHA256(), length=80, salt=salt,
                         iterations=10000).derive(password)
        mac = hmac.HMAC(key[32:64], hashes.SHA256())
        mac.update(ciphertext)
        try:
            mac.verify(expected)
        except InvalidSignature:
            continue
        decryptor = Cipher(algorithms.AES(key[:32]), modes.CTR(key[64:80])).decryptor()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            plain = unpadder.update(decryptor.update(ciphertext) + decryptor.finalize())
            return plain + unpadder.finalize()
        except ValueError as exc:
            raise VaultFailed("the vault data does not decrypt to padded data",
                              "encrypt it again with ansible-vault") from exc
    raise VaultFailed("no vault secret given could decrypt it (wrong password?)",
                      "pass the password it was encrypted with",
                      locked="Decryption failed (no vault secrets were found that could decrypt).")
