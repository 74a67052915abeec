#!/usr/bin/env bash
# The main job, embedded (no cluster, no network): synthetic DR10 sweeps with
# the lenscat lenses planted; positives, negatives, stratified sample and
# splits, the negatives matched to the lenses (profile paper_iv_matched);
# cutouts from a local server answering the viewer's API over a synthetic sky
# (lenspipe serve-cutouts on loopback); validation and its report.
# Everything lands under ./runs/paper_iv_matched/ (Parquet, run.json,
# validation/report.html). One line per step on stdout; cargo's build output
# goes to stderr, as it comes. Extra arguments go to `lenspipe run all`.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
step() { echo "demo $1/5: $2"; }

step 1 "cargo build --workspace --bins (the first build takes ~20 min on 2 cores)"
# --workspace: building one package alone would resolve other DataFusion features and rebuild it.
cargo build --workspace --bins
lenspipe=$target_dir/debug/lenspipe

if [[ -d data/sweeps ]]; then
  step 2 "synthetic sweeps: reusing data/sweeps (remove it to write new ones)"
else
  # Few files of many rows: the pool holds enough bright early types for
  # every lens to find negatives like it.
  step 2 "synthetic sweeps into data/sweeps: 4 DR10-format files of 400,000 rows, lenses planted"
  "$lenspipe" synth --out data/sweeps --files 4 --rows-per-file 400000 --seed 1 \
    --plant ./data/positives/lenscat_catalog.csv
fi

# The viewer stand-in: a synthetic sky, not DR10 pixels. With network access,
# drop the lines below up to viewer_url and the --set cutouts.* to use the
# public viewer instead.
server_out=$(mktemp)
"$lenspipe" serve-cutouts --synthetic-sky 1 >"$server_out" &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$server_out"' EXIT
for _ in $(seq 100); do [[ -s $server_out ]] && break; sleep 0.1; done
viewer_url=$(head -1 "$server_out")
step 3 "a stand-in for the viewer (synthetic sky): $viewer_url"

step 4 "lenspipe run all --config paper_iv_matched: negatives, positives, stratify, cutouts, validate"
# A local server needs no politeness limits: raise them for the demo. The
# synthetic pool holds a few thousand bright early types, enough for two
# matched negatives per lens (the profile's 100 needs DR10's pool).
"$lenspipe" run all --config paper_iv_matched --set "cutouts.viewer_url=$viewer_url" \
  --set cutouts.concurrency=16 --set cutouts.rate_per_s=2000 \
  --set sampling.negatives_per_positive=2 "$@"

step 5 "lenspipe parity: each parameter beside the request's, its provenance, rows removed"
"$lenspipe" parity --run runs/paper_iv_matched/run.json

echo "next: bash scripts/install.sh (lenspipe on PATH); every count is in runs/paper_iv_matched/run.json"
echo "      bash scripts/test.sh (the tests)"
echo "      the binary built here: $lenspipe"
echo "open: $PWD/runs/paper_iv_matched/validation/report.html"
