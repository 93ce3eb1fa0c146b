"""Ray Data over the ``aeshmac`` protocol: encrypted Parquet datasets (extra ``ray``).

Ray takes an fsspec filesystem as ``filesystem=`` (it wraps it in pyarrow's
``PyFileSystem(FSSpecHandler(fs))``) but understands no chained ``aeshmac::`` URL, and its
``read_parquet`` keeps only names ending in ``.parquet``: every ``x.parquet.ahm`` is filtered
out, even with ``file_extensions=None`` (Ray falls back to its default list), so a read "finds
no files". These helpers resolve the URL with fsspec, pass the filesystem and the path, list
``.parquet.ahm`` (and ``.parquet``) names, and write ``.parquet.ahm`` names::

    ds = read_parquet("aeshmac::file:///data/sales", storage_options={"aeshmac": {...}})
    write_parquet(ds, "aeshmac::file:///data/out", storage_options={"aeshmac": {...}})

What Ray ships to its workers is the pickled filesystem, so the rule of
``AesHmacFileSystem.__reduce__`` holds: never the password; with ``password_env``, only the
variable's name (a worker without it fails its task with an error naming the variable).
"""

from __future__ import annotations

from typing import Any, Final

import fsspec
import ray.data
from ray.data.datasource import FilenameProvider

from .._errors import StreamDamaged
from .fsspec import AesHmacFileSystem

ENCRYPTED_SUFFIX: Final = ".ahm"
"""What names of encrypted files end with, so that nobody takes them for plaintext."""

PARQUET_EXTENSIONS: Final = ("parquet" + ENCRYPTED_SUFFIX, "parquet")
"""Names ``read_parquet`` lists by default: those written here, and plain ``.parquet`` ones
(a file that is not an aes-hmac stream still fails its read: nothing unverified is read)."""


def resolve(
    url: str, storage_options: dict[str, Any] | None = None
) -> tuple[AesHmacFileSystem, str]:
    """The ``aeshmac`` filesystem and the path inside its target for ``url``.

    Refuses any URL that does not go through ``aeshmac::``: a plain one would read or write
    plaintext without a word.
    """
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    if not isinstance(fs, AesHmacFileSystem):
        raise ValueError(
            f"url must be chained through the aeshmac protocol (aeshmac::file://..., "
            f"aeshmac::s3://...), got {url!r}"
        )
    return fs, str(path)


class EncryptedParquetNames(FilenameProvider):
    """Ray's Parquet file names with the ``.ahm`` suffix: ``{write uuid}_{task}-{i}.parquet.ahm``.

    Already a template (``{i}`` numbers the files of one task, as Ray's own names do), so
    Ray's Parquet sink uses it as it is instead of splitting it at a dot.
    """

    def get_filename_for_task(self, write_uuid: str, task_index: int) -> str:
        return f"{write_uuid}_{task_index:06}-{{i}}.{PARQUET_EXTENSIONS[0]}"


def read_parquet(
    url: str, *, storage_options: dict[str, Any] | None = None, **kwargs: Any
) -> ray.data.Dataset:
    """``ray.data.read_parquet`` of an encrypted file or folder (``aeshmac::<target URL>``).

    ``kwargs`` go to Ray (``file_extensions`` defaults to ``PARQUET_EXTENSIONS``).
    """
    fs, path = resolve(url, storage_options)
    kwargs.setdefault("file_extensions", list(PARQUET_EXTENSIONS))
    _refuse_unauthenticated(fs, path, kwargs["file_extensions"])
    return ray.data.read_parquet(path, filesystem=fs, **kwargs)


def _refuse_unauthenticated(fs: Any, path: str, extensions: list[str] | None) -> None:
    """Raise the library's own error for the first file that does not authenticate.

    The listing marks such a file with size ``None``, and Ray drops entries without a size: it
    would read the other files and silently leave this one out (or find "no files")."""
    listing = fs.find(path, detail=True) if fs.isdir(path) else {path: fs.info(path)}
    for name, entry in sorted(listing.items()):
        wanted = extensions is None or any(name.endswith(f".{ext}") for ext in extensions)
        if wanted and entry.get("type") == "file" and entry.get("size") is None:
            with fs.open(name, "rb"):  # raises HeaderError or StreamDamaged, naming the damage
                pass
            raise StreamDamaged(f"{name} does not authenticate", 0)


def write_parquet(
    dataset: ray.data.Dataset,
    url: str,
    *,
    storage_options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """``Dataset.write_parquet`` into an encrypted folder (``aeshmac::<target URL>``).

    Files are named ``*.parquet.ahm`` unless ``filename_provider`` says otherwise; each is
    written by the stream writer, so it appears only when its task closes it cleanly.
    """
    fs, path = resolve(url, storage_options)
    kwargs.setdefault("filename_provider", EncryptedParquetNames())
    dataset.write_parquet(path, filesystem=fs, **kwargs)
