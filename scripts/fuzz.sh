#!/usr/bin/env bash
# Run every atheris harness in fuzz/ for a bounded time (FUZZ_SECONDS each, default 15) on seed
# corpora generated from tests/vectors; print the executions per harness; exit 1 on any finding
# (an exception other than the documented ones, a hang over 10 s, RSS over 1 GiB), keeping the
# crashing inputs in a folder that is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
seconds="${FUZZ_SECONDS:-15}"
work="$(mktemp -d -t aes-hmac-fuzz.XXXXXX)"
.venv/bin/python fuzz/make_corpus.py "$work/corpus" 2>/dev/null
status=0
for harness in token stream_header stream armor; do
    mkdir -p "$work/findings/$harness"
    log="$work/$harness.log"
    if .venv/bin/python "fuzz/fuzz_$harness.py" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=1024 -artifact_prefix="$work/findings/$harness/" \
        "$work/corpus/$harness" >"$log" 2>&1; then
        runs="$(grep -o 'Done [0-9]* runs' "$log" | tail -n 1 | cut -d' ' -f2)"
        echo "fuzz_$harness: ${runs:-?} executions in ${seconds} s, no finding"
    else
        echo "fuzz_$harness: FINDING (inputs in $work/findings/$harness)"
        grep -v '^INFO: Instrumenting' "$log" | tail -n 40
        status=1
    fi
done
if [ "$status" -eq 0 ]; then
    rm -rf "$work"
fi
exit "$status"
