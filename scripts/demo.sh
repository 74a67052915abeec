#!/usr/bin/env bash
# The main job, embedded (no cluster, no network): synthetic DR10 sweeps with
# the lenscat lenses planted, then positives, negatives, stratified sample and
# splits under ./runs/paper_iv/ (Parquet + run.json).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
# --workspace: building one package alone would resolve other DataFusion features and rebuild it.
cargo build -q --workspace --bins
lenspipe=$target_dir/debug/lenspipe
[[ -d data/sweeps ]] || "$lenspipe" synth --out data/sweeps --files 16 --rows-per-file 100000 --seed 1 \
  --plant ./data/positives/lenscat_catalog.csv
"$lenspipe" run all --config paper_iv "$@"
"$lenspipe" parity --run runs/paper_iv/run.json
