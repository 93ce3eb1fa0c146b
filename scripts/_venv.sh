# Sourced by the scripts: create .venv on first use and install the project with its extras.
# Reinstalls when pyproject.toml is newer than the last install, so a fresh clone needs nothing else.
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e '.[cli,sqlalchemy,fsspec,dask,test]'
    touch .venv/.installed
fi
