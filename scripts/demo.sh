#!/usr/bin/env bash
# The main job, embedded (no cluster, no network): synthetic DR10 sweeps with
# the lenscat lenses planted; positives, negatives, stratified sample and
# splits; cutouts from a local server answering the viewer's API over a
# synthetic sky (lenspipe serve-cutouts on loopback); validation and its
# report. Everything lands under ./runs/paper_iv/ (Parquet, run.json,
# validation/report.html).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
# --workspace: building one package alone would resolve other DataFusion features and rebuild it.
cargo build -q --workspace --bins
lenspipe=$target_dir/debug/lenspipe
[[ -d data/sweeps ]] || "$lenspipe" synth --out data/sweeps --files 16 --rows-per-file 100000 --seed 1 \
  --plant ./data/positives/lenscat_catalog.csv

# The viewer stand-in: a synthetic sky, not DR10 pixels. With network access,
# drop the two lines below and the --set to use the public viewer instead.
server_out=$(mktemp)
"$lenspipe" serve-cutouts --synthetic-sky 1 >"$server_out" &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$server_out"' EXIT
for _ in $(seq 100); do [[ -s $server_out ]] && break; sleep 0.1; done
viewer_url=$(head -1 "$server_out")

# A local server needs no politeness limits: raise them for the demo.
"$lenspipe" run all --config paper_iv --set "cutouts.viewer_url=$viewer_url" \
  --set cutouts.concurrency=16 --set cutouts.rate_per_s=2000 "$@"
"$lenspipe" parity --run runs/paper_iv/run.json
echo "report: runs/paper_iv/validation/report.html"
