#!/usr/bin/env bash
# The main job end to end on local defaults: installs the pinned Restate server and CLI, builds,
# starts both, registers the service with `restate deployments register`, generates an extract
# chain (and checks it, independently of the service: `kbo-testkit check-chain`), imports Full(N) then Update(N+1) through Restate ingress while showing progress, shows
# what the Update changed, verifies the register against Full(N+1), and prints where the
# database is with a sample query.
#
#   SCALE=0.01 scripts/demo.sh        # ~470 000 rows (default); SCALE=1.0 is a real-size Full
#                                     # (whose chain check takes a few minutes and about 7 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kbo-import/target}"
SCALE="${SCALE:-0.01}"
DEMO="${DEMO_DIR:-$PWD/demo}"
BIN="$CARGO_TARGET_DIR/debug/kbo-import"
TOOLS="$PWD/tools/node_modules/.bin"

for port in 8080 9070 9080; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
    echo "port $port is in use: stop what listens there (an earlier demo?) and run again" >&2
    exit 1
  fi
done

echo "==> installing the pinned Restate server and CLI into tools/, DuckDB's release library into tools/duckdb/"
npm ci --prefix tools --no-audit --no-fund --loglevel=error
npm ci --prefix tools/duckdb --no-audit --no-fund --loglevel=error
echo "==> building kbo-import (the first build: about 12 minutes on 2 cores)"
cargo build --locked --workspace

rm -rf "$DEMO" && mkdir -p "$DEMO"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 600); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on port $1; see the logs in $DEMO" >&2; exit 1
}

echo "==> starting restate-server (restate.toml; ingress :8080, admin and UI :9070)"
RESTATE_BASE_DIR="$DEMO/restate-data" "$TOOLS/restate-server" --config-file restate.toml --no-logo \
  > "$DEMO/restate.log" 2>&1 &
pids+=($!)
wait_port 9070; wait_port 8080

echo "==> starting the kbo-import service on :9080"
# RESTATE_ADMIN_URL: getProgress asks Restate about a run killed through its admin API.
KBO_DATABASE="$DEMO/kbo.duckdb" KBO_WORK_DIR="$DEMO/work" KBO_ALLOW_FILE_URLS=true \
  RESTATE_ADMIN_URL=http://127.0.0.1:9070 "$BIN" serve > "$DEMO/service.log" 2>&1 &
pids+=($!)
wait_port 9080

echo "==> restate deployments register http://127.0.0.1:9080"
RESTATE_ADMIN_URL=http://127.0.0.1:9070 "$TOOLS/restate" deployments register http://127.0.0.1:9080 --yes

echo "==> generating Full(140), Update(141), Full(141) at scale $SCALE, then checking Full(140) + Update(141) = Full(141) with the testkit's own reader"
"$CARGO_TARGET_DIR/debug/kbo-testkit" generate --out "$DEMO/extracts" --scale "$SCALE"

export RESTATE_INGRESS_URL=http://127.0.0.1:8080 RESTATE_ADMIN_URL=http://127.0.0.1:9070
for zip in "$DEMO"/extracts/KboOpenData_0140_*_Full.zip "$DEMO"/extracts/KboOpenData_0141_*_Update.zip; do
  echo "==> importing $(basename "$zip") through ingress (watch it in the Restate UI: http://127.0.0.1:9070/ui)"
  "$BIN" start "file://$zip" --watch
done

echo "==> what Update 141 changed (kbo-import changes 141; getChanges answers the same through ingress)"
KBO_DATABASE="$DEMO/kbo.duckdb" "$BIN" changes 141 --limit 10
echo "==> verifying the register against Full(141) (KboVerify; exits non-zero on a difference)"
"$BIN" verify "file://$(ls "$DEMO"/extracts/KboOpenData_0141_*_Full.zip)"

# Stop the service so the summary below reads a database no import holds.
cleanup; pids=()
echo
echo "==> the register is in $DEMO/kbo.duckdb (open it with: duckdb $DEMO/kbo.duckdb)"
KBO_DATABASE="$DEMO/kbo.duckdb" KBO_WORK_DIR="$DEMO/work" "$BIN" inspect
