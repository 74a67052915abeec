#!/usr/bin/env bash
# Benchmark: crossmatch of the whole lenscat catalog against
# synthetic sweeps (default 10 x 1,000,000 rows) by the positives stage,
# versus astropy's match_coordinates_sky on the same data, one run.
#   bash bench/crossmatch.sh [FILES] [ROWS_PER_FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-10}
rows=${2:-1000000}
cargo build -q --release --workspace --bins
lenspipe=${CARGO_TARGET_DIR:-$PWD/target}/release/lenspipe
work=${BENCH_DIR:-/tmp/lenspipe-bench}
lenscat=$PWD/data/positives/lenscat_catalog.csv
data=$work/xmatch-$files-$rows
[[ -d $data ]] || "$lenspipe" synth --out "$data" --files "$files" --rows-per-file "$rows" --seed 3 --plant "$lenscat" >&2
cat "$data"/*.fits > /dev/null
s=$EPOCHREALTIME
"$lenspipe" run positives --config paper_iv --set "inputs.sweeps=$data/" --set "inputs.positives=$lenscat" \
  --set "output=$work/xmatch-run" > /dev/null
t_ours=$(echo "$EPOCHREALTIME - $s" | bc -l)
s=$EPOCHREALTIME
python3 bench/crossmatch_astropy.py --lenses "$lenscat" --radius-arcsec 1.5 --out "$work/astropy-xmatch.csv" \
  --timings-json "$work/astropy-xmatch.json" --sweeps "$data"/*.fits > /dev/null
t_py=$(echo "$EPOCHREALTIME - $s" | bc -l)
python3 - "$work/xmatch-run/positives" "$work/astropy-xmatch.csv" <<'PY'
import sys, csv
sys.path.insert(0, "tests/py")
from lenspipe_output import dataset
t = dataset(sys.argv[1]).to_table(columns=["sweep_file", "row_index"])
ours = {k for k in zip(t.column("sweep_file").to_pylist(), t.column("row_index").to_pylist()) if k[0] is not None}
with open(sys.argv[2]) as f:
    theirs = {(r["sweep_file"], int(r["row_index"])) for r in csv.DictReader(f) if r["matched"] == "true"}
print(f"matched sources: lenspipe {len(ours)}, astropy {len(theirs)}, identical: {ours == theirs}")
PY
echo "| implementation | seconds (wall, including reading the sweeps) |"
echo "|---|---|"
echo "| lenspipe run positives (HEALPix-bucketed broadcast join) | $(printf %.2f "$t_ours") |"
echo "| astropy match_coordinates_sky (KD-tree) | $(printf %.2f "$t_py") |"
echo "astropy timings: $(cat "$work/astropy-xmatch.json")"
echo "ratio astropy / lenspipe: $(echo "scale=2; $t_py / $t_ours" | bc -l) on $((files * rows)) sweep rows"
