"""The package's top level: the everyday API and nothing else."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import warnings

import pytest

import aes_hmac

PUBLIC_SUBMODULES = {"armor", "cli", "compat", "importers", "integrations"}


def test_dir_shows_only_the_api_and_dunders() -> None:
    """``import aes_hmac`` used to show ``Any``, ``importlib`` and ``warnings`` too."""
    extra = {
        name
        for name in dir(aes_hmac)
        if name not in aes_hmac.__all__
        and name not in PUBLIC_SUBMODULES
        and not (name.startswith("__") and name.endswith("__"))
    }
    assert extra == set()
    assert set(aes_hmac.__all__) <= set(dir(aes_hmac))


def test_the_namespace_holds_no_helper_imports() -> None:
    """Every public name the module holds is API (the private modules start with ``_``)."""
    public = {name for name in vars(aes_hmac) if not name.startswith("_")}
    assert public - set(aes_hmac.__all__) <= PUBLIC_SUBMODULES
    for name in ("Any", "importlib", "warnings"):
        assert not hasattr(aes_hmac, name)


@pytest.mark.slow
def test_a_fresh_interpreter_sees_the_same_namespace() -> None:
    """Test order cannot hide a stray import: a new process imports only the package."""
    code = (
        "import json, aes_hmac\n"
        "print(json.dumps(sorted(n for n in vars(aes_hmac) if not n.startswith('_')"
        " and n not in aes_hmac.__all__)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert set(json.loads(out.stdout)) <= PUBLIC_SUBMODULES


@pytest.mark.parametrize(
    "name",
    [
        "convert_legacy",
        "decrypt_legacy_insecure",
        "import_aescrypt",
        "import_aescrypt_file",
        "import_fernet",
    ],
)
def test_names_that_never_shipped_are_not_here(name: str) -> None:
    """The package was never released: no 'moved' alias of another module's names."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError, match=f"has no attribute '{name}'"):
            getattr(aes_hmac, name)


def test_everything_in_all_exists_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in aes_hmac.__all__:
            getattr(aes_hmac, name)
    assert {"KDFS", "KdfOption", "aes_encrypt", "aes_decrypt"} <= set(aes_hmac.__all__)


def test_chunk_overhead_is_public_and_is_what_a_chunk_adds() -> None:
    """The CLI's progress counts plaintext from it: one constant, the format's."""
    out = io.BytesIO()
    aes_hmac.encrypt_stream(io.BytesIO(bytes(4096)), out, key=bytes(32), chunk_size=4096, workers=1)
    header = aes_hmac.inspect_stream(io.BytesIO(out.getvalue())).header_size
    final = aes_hmac.CHUNK_OVERHEAD + 16  # the empty final chunk: one padding block
    assert len(out.getvalue()) == header + 4096 + aes_hmac.CHUNK_OVERHEAD + final
