"""Decompression bombs are recognised from the archive's own size claims, without unpacking."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile

from madoguchi.lib.archives import bomb_reason


def _zip(members: dict[str, int]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, size in members.items():
            with archive.open(name, "w", force_zip64=True) as member:
                chunk = b"\0" * (1024 * 1024)
                for _ in range(size // len(chunk)):
                    member.write(chunk)
    return buffer.getvalue()


def test_a_highly_compressed_zip_is_a_bomb():
    content = _zip({"zeros.bin": 120 * 1024 * 1024})
    assert len(content) < 1024 * 1024
    assert "expands" in (bomb_reason("invoice.zip", content) or "")


def test_a_gzip_claiming_gigabytes_is_a_bomb():
    fake = b"\x1f\x8b\x08\x00" + b"\0" * 12 + struct.pack("<I", 3_000_000_000)
    assert "expands to 3,000,000,000 bytes" in (bomb_reason("logs.gz", fake) or "")


def test_ordinary_archives_and_files_pass():
    assert bomb_reason("logs.zip", _zip({"a.log": 2 * 1024 * 1024, "b.log": 1024 * 1024})) is None
    assert bomb_reason("small.gz", gzip.compress(b"hello " * 1000)) is None
    assert bomb_reason("photo.jpg", b"\xff\xd8\xff\xe0" + b"\x01" * 5000) is None
    assert bomb_reason("broken.zip", b"PK\x03\x04 not really a zip") is None
