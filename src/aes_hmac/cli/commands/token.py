"""``aes-hmac token encrypt|decrypt``: small values as text tokens, for shell scripts.

A token is one line of URL-safe base64 (the library's ``encrypt``/``Key.encrypt`` format), so a
script can keep a secret in a variable, a config file or an environment variable.
"""

from __future__ import annotations

import argparse
from typing import Final

import aes_hmac

from .. import options
from ..common import EXIT_OK, CliError, Command, UsageError, stdout_binary
from ..io_policy import open_input, path_arg
from ..messages import new_slot
from ..passwords import read_new_secret, read_old_secret
from ..sniffing import is_encrypted_file

PASSWORD = options.PasswordOptions(key_file=True)
KDF = options.KdfOptions()
LIMITS = options.LimitOptions()
MAX_TOKEN_INPUT: Final = 16 << 20
"""Tokens are for small values, held in memory: a bigger input belongs in 'aes-hmac encrypt'."""


def _add_common(parser: argparse.ArgumentParser, input_help: str) -> None:
    parser.add_argument("input", nargs="?", default="-", help=input_help)
    parser.add_argument(
        "--associated-data",
        metavar="TEXT",
        help="authenticated, not encrypted, not stored: decrypting needs the same TEXT",
    )
    PASSWORD.add(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="token_action", metavar="ACTION", required=True)
    seal = actions.add_parser(
        "encrypt",
        help="a value (stdin or a file) -> a token on stdout",
        description="Encrypt a value (stdin or a file, as bytes) into one token line on stdout.",
    )
    _add_common(seal, "value file (default or '-': stdin)")
    seal.add_argument("-q", "--quiet", action="store_true", help="no password warnings")
    KDF.add(seal)
    seal.set_defaults(token_run=_encrypt)
    unseal = actions.add_parser(
        "decrypt",
        help="a token (stdin or a file) -> the value on stdout",
        description="Decrypt one token (stdin or a file; surrounding whitespace ignored) to"
        " stdout.",
    )
    _add_common(unseal, "token file (default or '-': stdin)")
    LIMITS.add(unseal)
    unseal.set_defaults(token_run=_decrypt)


def _read_input(args: argparse.Namespace) -> bytes:
    src = path_arg(args.input)
    options.refuse_stdin_password(PASSWORD.read(args), src)
    with open_input(src) as fin:
        data = fin.read(MAX_TOKEN_INPUT + 1)
    if len(data) > MAX_TOKEN_INPUT:
        raise CliError(
            f"the input is over {MAX_TOKEN_INPUT >> 20} MiB: use 'aes-hmac encrypt' for big data"
        )
    return data


def _associated(args: argparse.Namespace) -> bytes | None:
    text: str | None = args.associated_data
    return None if text is None else text.encode("utf-8", "surrogateescape")


def _encrypt(args: argparse.Namespace) -> int:
    source = PASSWORD.read(args)
    if source.key_file is not None and KDF.given(args):
        raise UsageError("--key-file takes no KDF options")
    kdf = KDF.read(args)
    options.warn_beyond_default_limits(kdf)
    out = stdout_binary()
    value = _read_input(args)
    secret = read_new_secret(source, quiet=args.quiet)
    if isinstance(secret, aes_hmac.Key):
        token = secret.encrypt(value, associated_data=_associated(args))
    else:
        with new_slot(kdf):
            token = aes_hmac.encrypt(value, secret, kdf=kdf, associated_data=_associated(args))
    out.write(token.encode("ascii") + b"\n")
    out.flush()
    return EXIT_OK


def _decrypt(args: argparse.Namespace) -> int:
    source = PASSWORD.read(args)
    out = stdout_binary()
    text = _read_input(args)
    if is_encrypted_file(text):
        raise CliError("the input is an aes-hmac file, not a token: use 'aes-hmac decrypt'")
    try:
        token = text.strip(b" \t\r\n").decode("ascii")
    except UnicodeDecodeError:
        raise CliError("the input is not a token: tokens are ASCII text") from None
    if not token:
        raise CliError("the input is empty: no token to decrypt")
    secret = read_old_secret(source)
    if isinstance(secret, aes_hmac.Key):
        value = secret.decrypt(token, associated_data=_associated(args))
    else:
        value = aes_hmac.decrypt(
            token, secret, associated_data=_associated(args), limits=LIMITS.read(args)
        )
    out.write(value.encode("utf-8") if isinstance(value, str) else value)
    out.flush()
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    status: int = args.token_run(args)
    return status


COMMAND = Command(
    name="token",
    help="Encrypt or decrypt a small value as a text token (for shell scripts).",
    epilog="Examples:\n"
    '  printf %s "$API_KEY" | aes-hmac token encrypt --key-file app.key > api.token\n'
    "  API_KEY=$(aes-hmac token decrypt --key-file app.key api.token)\n"
    "Tokens from 'aes-hmac import --from fernet' and the library's encrypt() open here too.",
    add_arguments=add_arguments,
    run=run,
)
