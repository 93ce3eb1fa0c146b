"""Transitional re-exports for modules not yet moved to the split stream modules (cli.py,
_migrate.py); delete once nothing imports it. New code imports ``_files`` / ``_fileobj``."""

from ._files import atomic_output, check_distinct_paths

__all__ = ["atomic_output", "check_distinct_paths"]
