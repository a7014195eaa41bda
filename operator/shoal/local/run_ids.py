"""A local run's uid and default work directory, without `uuid` and `tempfile`.

`import uuid` loads `platform` (for its MAC-address lookups) and `tempfile` loads
`random`; together a few milliseconds of every `shoal run`'s start-up (issue 17), for
one random uid and, without `--workdir`, one directory. The uid is the same text as
`str(uuid.uuid4())`; the directory is made only when asked for, through `tempfile`.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["random_uid", "temporary_workdir"]


def random_uid() -> str:
    """A random (version 4, RFC 4122 variant) UUID as `str(uuid.uuid4())` writes it."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # variant: RFC 4122
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def temporary_workdir() -> Path:
    """A new private directory for a run without `--workdir` (`tempfile` loaded here)."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix="shoal-run-"))
