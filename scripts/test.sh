#!/usr/bin/env bash
# The test suite: builds the binaries the end-to-end tests start, then runs
# every test of the workspace. Needs python3 with numpy, astropy, pyarrow and
# moto[server] (scripts/install-test-deps.sh installs them). Ends with the
# docker-compose cluster test (deploy/compose-test.sh; a clear SKIP where no
# Docker engine runs).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --workspace --bins
cargo test --workspace -- --test-threads=2
bash deploy/compose-test.sh
