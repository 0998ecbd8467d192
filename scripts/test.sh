#!/usr/bin/env bash
# Runs the whole test suite: unit tests, and the end-to-end tests against a real Restate server.
# Installs what the tests need first: the pinned Restate server and CLI and DuckDB's release
# library (npm, into tools/ and tools/duckdb/), and podman with a Debian base image for the image
# test (scripts/images.sh, Debian's packages).
set -euo pipefail
cd "$(dirname "$0")/.."

# One warm target directory shared by every checkout on this machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kbo-import/target}"

npm ci --prefix tools --no-audit --no-fund --loglevel=error
npm ci --prefix tools/duckdb --no-audit --no-fund --loglevel=error
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The docs build, with every intra-doc link resolved (a renamed item breaks the build here).
RUSTDOCFLAGS="-D rustdoc::broken_intra_doc_links -D rustdoc::private_intra_doc_links" \
  cargo doc --no-deps --workspace --locked
# podman and the base image the image test builds the Dockerfile on (tests/suite/image.rs).
scripts/images.sh runtime
# The README's first command, end to end on its defaults (but for the folder): it must exit 0
# with the register verified equal to Full(141), 0 differences.
demo_dir="$(mktemp -d)"
trap 'rm -rf "$demo_dir"' EXIT
demo_log="$demo_dir/demo.log"
DEMO_DIR="$demo_dir/demo" bash scripts/demo.sh 2>&1 | tee "$demo_log"
grep -q "nothing to do" "$demo_log" \
  || { echo "scripts/demo.sh did not end with a clean verification (see above)" >&2; exit 1; }
echo "scripts/demo.sh: exit 0, the register equals Full(141)"
cargo test --workspace --locked --all-targets -- --test-threads 2 --skip cluster::
# The three-node cluster tests alone, one at a time: three Restate nodes and the service share
# the two cores, and a failover's timing should not depend on what else runs.
cargo test --locked --test suite -- --test-threads 1 cluster::
