#!/usr/bin/env bash
# Benchmark: the negatives stage (embedded) against a faithful
# Python reproduction of the request's numpy filter code (astropy reading),
# same files, same core count, one run; the kept sets must be identical.
#   bash bench/negatives.sh [FILES] [ROWS_PER_FILE]   (defaults: 4 x 1,000,000)
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-4}
rows=${2:-1000000}
cargo build -q --release --workspace --bins
lenspipe=${CARGO_TARGET_DIR:-$PWD/target}/release/lenspipe
work=${BENCH_DIR:-/tmp/lenspipe-bench}
cores=$(nproc)
data=$work/scan-$files-$rows
[[ -d $data ]] || "$lenspipe" synth --out "$data" --files "$files" --rows-per-file "$rows" --seed 1 >&2
cat "$data"/*.fits > /dev/null
out=$work/negatives-run
s=$EPOCHREALTIME
"$lenspipe" run negatives --config paper_iv --set "inputs.sweeps=$data/" --set "output=$out" \
  --set inputs.positives=null > /dev/null
t_ours=$(echo "$EPOCHREALTIME - $s" | bc -l)
s=$EPOCHREALTIME
python3 bench/request_negative_sampling.py --profile paper_iv --workers "$cores" \
  --kept-out "$work/python-kept.csv" --out-json "$work/python.json" "$data"/*.fits
t_py=$(echo "$EPOCHREALTIME - $s" | bc -l)
python3 - "$out/negatives" "$work/python-kept.csv" <<'PY'
import sys, csv
sys.path.insert(0, "tests/py")
from lenspipe_output import dataset
t = dataset(sys.argv[1]).to_table(columns=["sweep_file", "row_index"])
ours = set(zip(t.column("sweep_file").to_pylist(), t.column("row_index").to_pylist()))
with open(sys.argv[2]) as f:
    theirs = {(r["sweep_file"], int(r["row_index"])) for r in csv.DictReader(f)}
print(f"kept: lenspipe {len(ours)}, python {len(theirs)}, identical: {ours == theirs}")
sys.exit(0 if ours == theirs else 1)
PY
echo "| implementation | seconds |"
echo "|---|---|"
echo "| lenspipe run negatives (embedded, $cores cores; writes Parquet + run.json) | $(printf %.2f "$t_ours") |"
echo "| request numpy filter + astropy, $cores workers (filter only, no output) | $(printf %.2f "$t_py") |"
echo "speed-up: $(echo "scale=1; $t_py / $t_ours" | bc -l)x on $files x $rows rows"
