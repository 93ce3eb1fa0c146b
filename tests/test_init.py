"""The package's top level: the everyday API, and the moved names' deprecation shims."""

from __future__ import annotations

import pytest

import aes_hmac
import aes_hmac.compat
import aes_hmac.importers

MOVED = {
    "convert_legacy": aes_hmac.compat,
    "decrypt_legacy_insecure": aes_hmac.compat,
    "import_aescrypt": aes_hmac.importers,
    "import_aescrypt_file": aes_hmac.importers,
    "import_fernet": aes_hmac.importers,
}


@pytest.mark.parametrize("name", MOVED)
def test_moved_names_warn_and_still_work(name: str) -> None:
    new_home = MOVED[name]
    with pytest.warns(DeprecationWarning, match=rf"use {new_home.__name__}\.{name} \(removed"):
        old = getattr(aes_hmac, name)
    assert old is getattr(new_home, name)
    assert name not in aes_hmac.__all__


def test_moved_names_import_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="aes_hmac.import_fernet is deprecated"):
        from aes_hmac import import_fernet
    assert import_fernet is aes_hmac.importers.import_fernet


def test_unknown_names_still_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        aes_hmac.nope  # noqa: B018


def test_everything_in_all_exists_without_a_warning() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in aes_hmac.__all__:
            getattr(aes_hmac, name)
    assert {"KDFS", "KdfOption", "aes_encrypt", "aes_decrypt"} <= set(aes_hmac.__all__)
