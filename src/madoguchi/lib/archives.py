"""Recognising decompression bombs among attachments without unpacking them.

madoguchi never unpacks an attachment, but an agent who downloads one might, and a 40 KB zip that
expands to petabytes (the classic "42.zip", or overlapping-entry bombs) is never a customer's real
file. The zip central directory and the gzip trailer say how large the contents claim to be;
that is enough to refuse the obvious cases, and costs no decompression.
"""

from __future__ import annotations

import io
import struct
import zipfile

# Real customer archives (logs, screenshots, documents) stay far below these.
MAX_EXPANDED_BYTES = 1024**3  # 1 GiB claimed once unpacked
MAX_RATIO = 200  # unpacked size / packed size, for archives that expand to over 100 MB
RATIO_FLOOR_BYTES = 100 * 1024**2
MAX_ENTRIES = 10_000
NESTED = (".zip", ".gz", ".tgz", ".7z", ".rar", ".bz2", ".xz")


def bomb_reason(filename: str, content: bytes) -> str | None:
    """Why this attachment looks like a decompression bomb, or None."""
    if content[:4] == b"PK\x03\x04" or content[:4] == b"PK\x05\x06":
        return _zip_reason(content)
    if content[:2] == b"\x1f\x8b" and len(content) >= 18:
        # ISIZE: the unpacked size modulo 2**32 (a lower bound for huge members).
        (expanded,) = struct.unpack("<I", content[-4:])
        return _size_reason(expanded, len(content))
    return None


def _zip_reason(content: bytes) -> str | None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return None  # not an archive we can read; it is stored as bytes and never opened
    if len(entries) > MAX_ENTRIES:
        return f"archive holds {len(entries)} files (more than {MAX_ENTRIES})"
    nested = sum(1 for e in entries if e.filename.lower().endswith(NESTED))
    if nested > 16 and nested == len(entries):
        return f"archive holds only archives ({nested}): a nested decompression bomb"
    return _size_reason(sum(e.file_size for e in entries), len(content))


def _size_reason(expanded: int, packed: int) -> str | None:
    if expanded > MAX_EXPANDED_BYTES:
        return f"archive expands to {expanded:,} bytes (more than {MAX_EXPANDED_BYTES:,})"
    if expanded > RATIO_FLOOR_BYTES and expanded > packed * MAX_RATIO:
        return f"archive expands {expanded // max(packed, 1):,} times ({expanded:,} bytes from {packed:,})"
    return None
