# Sourced by the scripts: create .venv on first use and install the project with the extras in
# $VENV_EXTRAS (default: everything the tests need). Reinstalls when pyproject.toml is newer than
# the last install of those extras, so a fresh clone needs nothing else.
extras="${VENV_EXTRAS:-cli,sqlalchemy,fsspec,dask,spark,test}"
stamp=".venv/.installed-${extras//,/-}"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e ".[$extras]"
    touch "$stamp"
fi
