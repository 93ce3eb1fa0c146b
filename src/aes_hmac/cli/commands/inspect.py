"""``aes-hmac inspect``: what a stream's header says, without any password."""

from __future__ import annotations

import argparse

from .. import options
from ..common import EXIT_OK, Command, write_stdout
from ..io_policy import open_input, path_arg
from ..sniffing import open_encrypted

RAW_KEY_TEXT = "key file (raw 256-bit key, no KDF)"
"""A slot without a KDF opens with a key file (``--key-file``)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_input(parser)


def run(args: argparse.Namespace) -> int:
    with open_input(path_arg(args.input)) as fin:
        _, armored, header = open_encrypted(fin)
    info = header.info
    lines = [
        f"format: aes-hmac stream, version {info.version}",
        f"armor: {'yes' if armored else 'no'}",
        f"chunk size: {info.chunk_size} bytes",
        f"header size: {info.header_size} bytes",
        f"password slots: {len(info.slots)}",
    ]
    lines += [
        f"slot {i}: {RAW_KEY_TEXT if slot.kdf is None else slot.kdf.describe()}"
        for i, slot in enumerate(info.slots, 1)
    ]
    write_stdout("\n".join(lines) + "\n")
    return EXIT_OK


COMMAND = Command(
    name="inspect",
    help="Show format version, chunk size and each slot (password KDF or key file); needs no"
    " password.",
    add_arguments=add_arguments,
    run=run,
)
