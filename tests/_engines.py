"""What the engine tests share: an encrypted Parquet file on a real ``memory://`` filesystem whose
ranged reads are logged, and the proof that a projection decrypts only the chunks it needs."""

from __future__ import annotations

import io
import os
import uuid
from dataclasses import dataclass, field

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

import aes_hmac
from aes_hmac import PBKDF2
from aes_hmac._stream.format import CHUNK_OVERHEAD
from aes_hmac.integrations.fsspec import AesHmacFileSystem

PASSWORD = "correct horse battery staple 7f3a"
"""Grepped for in every plan, error and log the engines produce."""
CHUNK = 4096
"""The smallest chunk size, so a projection's saving shows at a fine grain."""
ROWS, ROW_GROUP = 30_000, 10_000
CHEAP = PBKDF2(iterations=1000)


@dataclass
class Fetches:
    """Every ranged read the aes-hmac reader made of the target: (offset, length)."""

    ranges: list[tuple[int, int]] = field(default_factory=list)

    def chunks(self, header_size: int) -> set[int]:
        """Indices of the encrypted chunks the reads touched (the header probe excluded)."""
        full = CHUNK + CHUNK_OVERHEAD
        touched: set[int] = set()
        for offset, length in self.ranges:
            start = max(offset, header_size) - header_size
            end = offset + length - header_size
            if end > start:
                touched.update(range(start // full, (end - 1) // full + 1))
        return touched


@dataclass
class EncryptedParquet:
    """A two-column Parquet file, encrypted: ``small`` (int64) and ``big`` (random bytes)."""

    fs: AesHmacFileSystem
    path: str
    table: pa.Table
    plain: bytes
    fetches: Fetches
    header_size: int

    @property
    def url(self) -> str:
        return f"aeshmac://{self.path}"

    def column_chunks(self, column: str, row_groups: range | None = None) -> set[int]:
        """Plaintext chunk indices holding ``column``'s column chunks (in ``row_groups``, all
        by default), per the Parquet metadata."""
        meta = pq.ParquetFile(io.BytesIO(self.plain)).metadata
        out: set[int] = set()
        for rg in row_groups or range(meta.num_row_groups):
            for c in range(meta.num_columns):
                cc = meta.row_group(rg).column(c)
                if cc.path_in_schema != column:
                    continue
                start = cc.dictionary_page_offset or cc.data_page_offset
                end = start + cc.total_compressed_size
                out.update(range(start // CHUNK, (end - 1) // CHUNK + 1))
        return out

    def footer_chunks(self, tail: int) -> set[int]:
        """The chunks holding the footer (metadata, its length, the magic), or the last ``tail``
        bytes if more: engines read a fixed tail at once to find the footer in one request."""
        footer = max(int.from_bytes(self.plain[-8:-4], "little") + 8, tail)
        last = (len(self.plain) - 1) // CHUNK
        return set(range(max(0, len(self.plain) - footer) // CHUNK, last + 1))


def encrypted_parquet(kind: type[AesHmacFileSystem] = AesHmacFileSystem) -> EncryptedParquet:
    """The file on a fresh folder of a real memory filesystem, with its target's reads logged."""
    # A fresh instance (fsspec caches them) so the read log below is this file's alone.
    target = fsspec.filesystem("memory", skip_instance_cache=True)
    fs = kind(fs=target, password=PASSWORD, kdf=CHEAP, chunk_size=CHUNK)
    table = pa.table(
        {
            "small": pa.array(range(ROWS), pa.int64()),
            "big": pa.array([os.urandom(40) for _ in range(ROWS)]),
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=ROW_GROUP, compression="none")
    path = f"/e{uuid.uuid4().hex}/t.parquet.ahm"  # the stored name: raw reads below use it
    fs.pipe_file(path, buf.getvalue())
    header_size = aes_hmac.inspect_stream(io.BytesIO(fs.fs.cat_file(path))).header_size
    fetches = Fetches()
    cat_file = fs.fs.cat_file

    def logged(p: str, start: int | None = None, end: int | None = None, **kw: object) -> bytes:
        out: bytes = cat_file(p, start=start, end=end, **kw)
        fetches.ranges.append((start or 0, len(out)))
        return out

    fs.fs.cat_file = logged  # the real memory filesystem, its reads written down
    return EncryptedParquet(fs, path, table, buf.getvalue(), fetches, header_size)


def assert_only_column_decrypted(enc: EncryptedParquet, column: str, other: str, tail: int) -> None:
    """The reads touched the footer (``tail``: the engine's footer read) and ``column``'s
    chunks, and none that only ``other`` fills."""
    touched = enc.fetches.chunks(enc.header_size)
    needed = enc.column_chunks(column) | enc.footer_chunks(tail)
    only_other = enc.column_chunks(other) - needed
    assert len(only_other) > 3 * len(enc.column_chunks(column))  # the saving is real
    assert touched, "nothing was read through the filesystem"
    assert touched <= needed, sorted(touched - needed)
    assert not touched & only_other


def assert_no_secret(*texts: str) -> None:
    """None of the texts (plans, errors, logs) holds the password or a piece of it."""
    for text in texts:
        assert PASSWORD not in text
        assert PASSWORD.split()[-1] not in text
        assert PASSWORD.encode().hex() not in text
