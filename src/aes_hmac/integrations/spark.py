"""The ``aeshmac`` Spark data source: encrypted Parquet, CSV and JSON lines (extra ``spark``).

A Spark 4 Python Data Source over the ``aeshmac`` fsspec filesystem::

    register(spark)
    df = (spark.read.format("aeshmac").option("format", "parquet")
          .option("password_env", "AESHMAC_PASSWORD").load("/data/sales"))
    df.write.format("aeshmac").option("format", "parquet") \\
        .option("password_env", "AESHMAC_PASSWORD").mode("append").save("/data/out")

One partition per Parquet row group, one per CSV or JSON-lines file. The password never enters
Spark: options show in plans (``explain()``), the UI and logs, so the source takes only
``password_env``, the NAME of an environment variable that every Python worker reads from its
own environment (``spark.executorEnv.NAME`` on a cluster); ``password`` and ``key`` options are
refused. A worker without the variable fails its task with an error naming the variable.

Writes follow the writer rule (``_lifecycle``): each task writes its file into the job's hidden
staging folder (``.aeshmac-staging-<job>``, which readers skip; made by the driver before any
task), where it exists only after a clean close. The driver's ``commit`` moves every staged file
to its final ``part-*.<format>.ahm`` name; ``abort`` removes the folder, so a task still running
then cannot link its file in. A failed job leaves no file.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import fsspec
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq
from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    DataSourceReader,
    InputPartition,
    WriterCommitMessage,
)
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema
from pyspark.sql.types import StructType

from .._files.walk import SUFFIX
from .fsspec import AesHmacFileSystem

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["AesHmacDataSource", "register"]

SOURCE_NAME: Final = "aeshmac"
FORMATS: Final = ("parquet", "csv", "json")
"""Values of the ``format`` option (``json`` is JSON lines)."""
SECRET_OPTIONS: Final = ("password", "key")
"""Options refused: their values would show in plans and logs."""
STAGING_PREFIX: Final = ".aeshmac-staging-"
SCHEMA_SAMPLE_BYTES: Final = 1 << 20
"""Bytes of the first JSON-lines file read to infer a schema (whole lines only)."""


def register(spark: SparkSession) -> None:
    """Register the data source with ``spark`` as ``format("aeshmac")``."""
    spark.dataSource.register(AesHmacDataSource)


@dataclass(frozen=True)
class _Options:
    """The source's options, checked; what crosses to the workers (no secret, only a name)."""

    path: str
    format: str
    password_env: str

    @classmethod
    def parse(cls, options: Any) -> _Options:
        for name in SECRET_OPTIONS:
            if name in options:
                # Never the value: it is the secret.
                raise ValueError(
                    f"the {SOURCE_NAME} source refuses option {name!r} (options show in plans "
                    "and logs): set password_env to the name of an environment variable"
                )
        path = options.get("path")
        if not path:
            raise ValueError(f"the {SOURCE_NAME} source needs a path: load(PATH) or save(PATH)")
        fmt = options.get("format", "parquet").lower()
        if fmt not in FORMATS:
            raise ValueError(f"option format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        env = options.get("password_env")
        if not env:
            raise ValueError(
                "option password_env is required: the name of an environment variable holding "
                "the password on the driver and every worker"
            )
        return cls(str(path), fmt, str(env))

    def filesystem(self) -> tuple[AesHmacFileSystem, str]:
        """The encrypted filesystem over the path's own (reads ``password_env`` here)."""
        target, root = fsspec.core.url_to_fs(self.path)
        return AesHmacFileSystem(fs=target, password_env=self.password_env), root


def _visible(relative: str) -> bool:
    """Data files: no hidden or underscore name on the way (staging folders, ``_SUCCESS``,
    the manifest of ``encrypt_tree``)."""
    return not any(part.startswith((".", "_")) for part in relative.split("/") if part)


def _files(afs: AesHmacFileSystem, root: str) -> list[str]:
    """``root`` itself if a file, else its visible files (recursively), sorted."""
    if not afs.fs.isdir(root):
        return [root]
    found = sorted(p for p in afs.fs.find(root) if _visible(p.removeprefix(root)))
    if not found:
        raise FileNotFoundError(f"no files under {root}")
    return found


def _read_schema(afs: AesHmacFileSystem, path: str, fmt: str) -> pa.Schema:
    """The Arrow schema of one encrypted file (Parquet: its footer; CSV: its first block;
    JSON lines: its first megabyte of whole lines)."""
    with afs.open(path, "rb") as f:
        if fmt == "parquet":
            return pq.read_schema(f)
        if fmt == "csv":
            return pa_csv.open_csv(f).schema
        sample = f.read(SCHEMA_SAMPLE_BYTES)
    if len(sample) == SCHEMA_SAMPLE_BYTES and b"\n" in sample:
        sample = sample[: sample.rindex(b"\n") + 1]
    return pa_json.read_json(io.BytesIO(sample)).schema


class _FilePart(InputPartition):
    """One file, or one row group of a Parquet file."""

    def __init__(self, path: str, row_group: int | None) -> None:
        super().__init__((path, row_group))
        self.path = path
        self.row_group = row_group


class _Reader(DataSourceReader):
    """Plans partitions on the driver; reads each on a worker, yielding Arrow batches."""

    def __init__(self, options: _Options, schema: StructType) -> None:
        self.options = options
        self.arrow_schema = to_arrow_schema(schema)

    def partitions(self) -> Sequence[_FilePart]:
        afs, root = self.options.filesystem()
        paths = _files(afs, root)
        if self.options.format != "parquet":
            return [_FilePart(p, None) for p in paths]
        parts: list[_FilePart] = []
        for path in paths:
            with afs.open(path, "rb") as f:
                groups = pq.ParquetFile(f).num_row_groups
            parts.extend(_FilePart(path, i) for i in range(groups))
        return parts

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        if not isinstance(partition, _FilePart):
            raise TypeError(f"not a partition of this source: {type(partition).__name__}")
        afs, _ = self.options.filesystem()  # a worker without the variable fails here
        schema = self.arrow_schema
        with afs.open(partition.path, "rb") as f:
            if self.options.format == "parquet":
                table = pq.ParquetFile(f).read_row_group(partition.row_group, columns=schema.names)
                yield from table.cast(schema).to_batches()
            elif self.options.format == "csv":
                types = {field.name: field.type for field in schema}
                convert = pa_csv.ConvertOptions(column_types=types, include_columns=schema.names)
                yield from pa_csv.open_csv(f, convert_options=convert)
            else:
                parse = pa_json.ParseOptions(explicit_schema=schema)
                table = pa_json.read_json(f, parse_options=parse)
                yield from table.select(schema.names).to_batches()


@dataclass(frozen=True)
class _Staged(WriterCommitMessage):
    """One task's file: written whole under its staging name, renamed at commit."""

    staged: str | None
    """None for a task that had no rows (it writes no file, which would be unreadable Parquet)."""
    final: str | None


class _Writer(DataSourceArrowWriter):
    """Each task writes one file into the job's hidden staging folder; the driver's commit
    moves them all out, its abort removes the folder."""

    def __init__(self, options: _Options) -> None:
        self.options = options
        afs, root = options.filesystem()
        self.root = root.rstrip("/")
        self.staging = f"{self.root}/{STAGING_PREFIX}{uuid.uuid4().hex}"
        # Made here, on the driver, before any task: a task never makes it, so a task still
        # running after an abort removed it fails instead of leaving a file behind.
        afs.makedirs(self.staging, exist_ok=False)

    def write(self, iterator: Iterator[pa.RecordBatch]) -> _Staged:
        afs, _ = self.options.filesystem()  # a worker without the variable fails here
        first = next(iterator, None)
        if first is None:
            return _Staged(None, None)
        name = f"part-{uuid.uuid4().hex}.{self.options.format}{SUFFIX}"
        staged = f"{self.staging}/{name}"
        # The encrypted file appears under its staging name only on a clean close.
        with afs.open(staged, "wb") as out:
            self._write_batches(out, first, iterator)
        return _Staged(staged, f"{self.root}/{name}")

    def _write_batches(
        self, out: Any, first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]
    ) -> None:
        fmt = self.options.format
        if fmt == "parquet":
            with pq.ParquetWriter(out, first.schema) as writer:
                writer.write_batch(first)
                for batch in rest:
                    writer.write_batch(batch)
        elif fmt == "csv":
            with pa_csv.CSVWriter(out, first.schema) as writer:
                writer.write_batch(first)
                for batch in rest:
                    writer.write_batch(batch)
        else:
            for batch in (first, *rest):
                for row in batch.to_pylist():
                    out.write(_json_line(row))

    def commit(self, messages: list[WriterCommitMessage | None]) -> None:
        afs, _ = self.options.filesystem()
        for message in messages:
            if isinstance(message, _Staged) and message.staged and message.final:
                afs.fs.mv(message.staged, message.final)
        _remove_staging(afs.fs, self.staging)

    def abort(self, messages: list[WriterCommitMessage | None]) -> None:
        afs, _ = self.options.filesystem()
        _remove_staging(afs.fs, self.staging)


def _remove_staging(fs: Any, staging: str) -> None:
    """Remove a job's staging folder and what is left in it. On an object store the "folder"
    is gone with its last object (the commit moved them all out), so its absence is success,
    never a failure reported after the files are in place."""
    fs.invalidate_cache()
    with suppress(FileNotFoundError):
        fs.rm(staging, recursive=True)


def _json_line(row: dict[str, Any]) -> bytes:
    """One JSON line (dates and decimals as strings, as Spark's own JSON writer does)."""
    return (json.dumps(row, default=str, ensure_ascii=False) + "\n").encode("utf-8")


class AesHmacDataSource(DataSource):
    """``spark.read.format("aeshmac")`` and ``df.write.format("aeshmac")``: see the module."""

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def _options(self) -> _Options:
        return _Options.parse(self.options)

    def schema(self) -> StructType:
        """Inferred on the driver from the first file (give ``.schema(...)`` to skip that)."""
        options = self._options()
        afs, root = options.filesystem()
        return from_arrow_schema(_read_schema(afs, _files(afs, root)[0], options.format))

    def reader(self, schema: StructType) -> _Reader:
        return _Reader(self._options(), schema)

    def writer(self, schema: StructType, overwrite: bool) -> _Writer:
        if overwrite:
            raise ValueError(
                f"the {SOURCE_NAME} source writes with mode('append') only (overwrite would "
                "delete files before the new ones are committed)"
            )
        return _Writer(self._options())
