"""The ``aes-hmac`` command: argument parsing, password sources and I/O policy, no cryptography.

Every byte of cryptography happens in the public ``aes_hmac`` API; this package decides where
input comes from, where output goes, how passwords are asked for, and how failures are told:
one line ``aes-hmac: error: ...`` on stderr, exit status 0 success, 1 failure, 2 usage error.
See docs/ARCHITECTURE.md for its modules.
"""

from .app import build_parser, entry, main

__all__ = ["build_parser", "entry", "main"]
