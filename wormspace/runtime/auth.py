"""Shared-secret keys: with an ``auth_key_file`` in the cluster file, every frame carries an HMAC.

Rules:

1. A key is the file's bytes without surrounding whitespace, at least ``MIN_KEY_BYTES`` of them; a shorter
   or unreadable file is a ``UsageError``; a file readable by other users is logged as a warning.
2. ``new_auth_key`` never overwrites: it creates the file (mode 600) or fails.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from wormspace.errors import UsageError

log = logging.getLogger("wormspace.runtime.auth")

AUTH_KEY_NAME = "auth.key"
MIN_KEY_BYTES = 16


def load_auth_key(path: str | os.PathLike[str]) -> bytes:
    """The shared secret: the file's bytes without surrounding whitespace, at least 16 of them."""
    p = Path(path)
    try:
        key = p.read_bytes().strip()
        mode = p.stat().st_mode
    except OSError as e:
        raise UsageError(f"{p}: cannot read the auth key file: {e.strerror or e}") from None
    if len(key) < MIN_KEY_BYTES:
        raise UsageError(f"{p}: an auth key needs at least {MIN_KEY_BYTES} bytes, the file holds {len(key)}")
    if mode & 0o077:
        log.warning("auth key file %s is readable by other users (mode %o); chmod 600 it", p, mode & 0o777)
    return key


def new_auth_key(path: str | os.PathLike[str]) -> bytes:
    """Create a fresh random key file (64 hex characters, mode 600) and return the key."""
    key = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return key
