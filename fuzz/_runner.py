"""Shared pieces of the atheris harnesses: the allowed exceptions, cheap limits, the entry point.

A harness defines ``one_input(data: bytes) -> None``; ``main`` instruments the library, wraps the
function so that only the library's documented exceptions (``DecryptionError`` and its subclasses)
may escape silently, and hands over to libFuzzer. Anything else (IndexError, struct.error,
MemoryError, an unexpected ValueError, a hang past ``-timeout``, RSS past ``-rss_limit_mb``) is a
finding: libFuzzer writes the input to ``crash-*`` and exits non-zero.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["aes_hmac"]):
    import aes_hmac
    from aes_hmac import KdfLimits

# Limits low enough that no fuzz input can make a KDF run long: the fuzzer would otherwise find
# the (documented, intended) 20,000,000-iteration PBKDF2 and report it as a hang.
CHEAP_LIMITS = KdfLimits(
    max_pbkdf2_iterations=2000,
    max_memory_bytes=1 << 20,
    max_scrypt_p=2,
    max_argon2_iterations=2,
    max_argon2_lanes=2,
)
KEY = bytes(range(0x20, 0x40))
PASSWORD = "pässwörd"
Expected = tuple[type[BaseException], ...]


def guarded(one_input: Callable[[bytes], None], expected: Expected) -> Callable[[bytes], None]:
    """``one_input`` with the ``expected`` exceptions swallowed; everything else propagates."""

    def test_one_input(data: bytes) -> None:
        with contextlib.suppress(*expected):
            one_input(data)

    return test_one_input


def main(
    one_input: Callable[[bytes], None], expected: Expected = (aes_hmac.DecryptionError,)
) -> None:
    """Run libFuzzer on ``one_input`` with the command-line options of ``sys.argv``."""
    atheris.Setup(sys.argv, guarded(one_input, expected))
    atheris.Fuzz()
