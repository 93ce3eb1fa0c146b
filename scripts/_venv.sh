# Sourced by the scripts: create .venv on first use and install the project with the extras in
# $VENV_EXTRAS (default: every optional-dependency group of pyproject.toml, read from it, so a new
# extra's tests never silently skip). Reinstalls when pyproject.toml is newer than the last
# install of those extras, so a fresh clone needs nothing else.
if [ -z "${VENV_EXTRAS:-}" ]; then
    extras=$(python3 -c 'import tomllib
with open("pyproject.toml", "rb") as f:
    print(",".join(tomllib.load(f)["project"]["optional-dependencies"]))')
else
    extras=$VENV_EXTRAS
fi
stamp=".venv/.installed-${extras//,/-}"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e ".[$extras]"
    touch "$stamp"
fi
