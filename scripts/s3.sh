#!/usr/bin/env bash
# A throwaway S3 API server for the tests: `bash scripts/s3.sh [start]` installs moto's server
# mode into the project venv if it is missing (the `test` extra names it), starts it on
# 127.0.0.1 on a free port and prints its endpoint URL (also written to $AES_HMAC_S3_DIR/url).
# A running server is reused. `bash scripts/s3.sh stop` stops it. Its state is in memory, so a
# restart starts empty; it listens on the loopback address only and holds test data only.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${AES_HMAC_S3_DIR:-/tmp/aes-hmac-s3-$(pwd | sha256sum | cut -c1-12)}
python=${AES_HMAC_S3_PYTHON:-.venv/bin/python}

running() {
    [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null
}

if [ "${1:-start}" = stop ]; then
    if running; then
        kill "$(cat "$dir/pid")"
    fi
    rm -f "$dir/pid" "$dir/url"
    exit 0
fi

if ! "$python" -c 'import moto.server, flask_cors' 2>/dev/null; then
    echo "s3.sh: installing moto[server] into the venv" >&2
    # Keep the botocore that s3fs (through aiobotocore) pins: pip picks a boto3 to match it.
    keep=$("$python" -c 'import botocore; print("botocore==" + botocore.__version__)' 2>/dev/null || true)
    "$python" -m pip install -q "moto[server]>=5.0" $keep >&2
fi

if ! running; then
    mkdir -p "$dir"
    chmod 700 "$dir"
    port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # Fake credentials: moto accepts any; set here so no real ones of the caller are sent.
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
        setsid "$python" -m moto.server -H 127.0.0.1 -p "$port" </dev/null >"$dir/server.log" 2>&1 &
    echo $! >"$dir/pid"
    url=http://127.0.0.1:$port
    for _ in $(seq 100); do
        if "$python" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1] + '/moto-api/data.json', timeout=1)" "$url" 2>/dev/null; then
            echo "$url" >"$dir/url"
            break
        fi
        running || break
        sleep 0.1
    done
    [ -f "$dir/url" ] || { tail -n 20 "$dir/server.log" >&2; bash "$0" stop; exit 1; }
fi
cat "$dir/url"
