"""``aes-hmac inspect``: what a stream's header says, without any password."""

from __future__ import annotations

import argparse
import sys

import aes_hmac
from aes_hmac import armor

from .. import options
from ..common import EXIT_OK, Command
from ..io_policy import open_input, path_arg

RAW_KEY_TEXT = "raw key (no KDF)"
"""A slot without a KDF opens with a 32-byte key."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_input(parser)


def run(args: argparse.Namespace) -> int:
    with open_input(path_arg(args.input)) as fin:
        stream, armored = armor.sniff(fin)
        info = aes_hmac.inspect_stream(stream)
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
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    return EXIT_OK


COMMAND = Command(
    name="inspect",
    help="Show format version, chunk size and each password slot's KDF; needs no password.",
    add_arguments=add_arguments,
    run=run,
)
