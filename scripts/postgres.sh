#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: `bash scripts/postgres.sh [start]` installs Debian's
# postgresql if it is missing (needs root), creates a cluster owned by the postgres user in
# $AES_HMAC_PG_DIR (default: a directory under /tmp per checkout), starts it on 127.0.0.1 on a
# free port and prints its SQLAlchemy URL (also written to $AES_HMAC_PG_DIR/url). A running
# cluster is reused. `bash scripts/postgres.sh stop` stops it. Trust authentication: the server
# listens on the loopback address only and holds test data only.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${AES_HMAC_PG_DIR:-/tmp/aes-hmac-pg-$(pwd | sha256sum | cut -c1-12)}
data=$dir/data

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

bin_dir() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

if [ "${1:-start}" = stop ]; then
    if [ -f "$data/postmaster.pid" ]; then
        as_postgres "$(bin_dir)/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    fi
    exit 0
fi

if [ -z "$(bin_dir)" ]; then
    echo "postgres.sh: installing Debian's postgresql" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
bin=$(bin_dir)
[ -n "$bin" ] || { echo "postgres.sh: postgresql is not installed" >&2; exit 1; }

if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    chmod 700 "$dir"
    as_postgres "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
fi

if ! as_postgres "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # Test data only: durability off makes the tests' many small transactions cheap.
    as_postgres "$bin/pg_ctl" -D "$data" -w -t 60 -l "$dir/server.log" \
        -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start </dev/null >/dev/null 2>&1 || { tail -n 20 "$dir/server.log" >&2; exit 1; }
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres" | as_postgres tee "$dir/url" >/dev/null
fi
cat "$dir/url"
