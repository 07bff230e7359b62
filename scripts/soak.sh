#!/usr/bin/env bash
# Soak: one loadmon server holding CLIENTS concurrent protocol clients (default 1,000) for
# DURATION seconds (default 60) with a heartbeat and a stats line every PERIOD seconds (default 1).
# Passes when every client ends PASS; prints the server's peak RSS (VmHWM) and CPU time.
# Not part of `make test` (it takes over a minute); run it with `make soak`.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-1000}
DURATION=${DURATION:-60}
PERIOD=${PERIOD:-1}
ulimit -n $((CLIENTS * 2 + 256)) 2>/dev/null || ulimit -n hard 2>/dev/null || true

cargo build --release --quiet --bin loadmon --example loadgen
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

./target/release/loadmon -q server --port 0 --max-clients "$CLIENTS" --no-log-files \
    --heartbeat-timeout $((PERIOD * 5 + 5)) --report-json "$work/report.json" \
    >"$work/server.out" 2>"$work/server.err" &
server=$!
for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$work/server.err")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "${port:-}" ] || { echo "soak: the server did not start"; cat "$work/server.err"; exit 1; }

# Sample the server's peak RSS while it runs.
hwm=0
( while kill -0 "$server" 2>/dev/null; do
      grep VmHWM /proc/"$server"/status 2>/dev/null | awk '{print $2}' >"$work/hwm.tmp" && mv "$work/hwm.tmp" "$work/hwm"
      grep -h "" /proc/"$server"/stat 2>/dev/null | awk '{print $14+$15}' >"$work/ticks.tmp" && mv "$work/ticks.tmp" "$work/ticks"
      sleep 1
  done ) &
sampler=$!

./target/release/examples/loadgen --port "$port" --clients "$CLIENTS" --duration "$DURATION" --period "$PERIOD"
wait "$server" || true
wait "$sampler" || true
hwm=$(cat "$work/hwm" 2>/dev/null || echo 0)
ticks=$(cat "$work/ticks" 2>/dev/null || echo 0)
passed=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sum(c["status"]=="PASS" for c in r["clients"]), len(r["clients"]))' "$work/report.json")
echo "soak: $CLIENTS clients x ${DURATION}s, period ${PERIOD}s: PASS/clients = $passed"
echo "soak: server peak RSS $((hwm / 1024)) MiB ($hwm KiB), CPU time $(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t/hz}') s"
[ "$passed" = "$CLIENTS $CLIENTS" ]
