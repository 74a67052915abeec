#!/usr/bin/env bash
# Benchmark: the FITS scan of the `sweeps` table against the read
# limit (cat) and astropy + numpy, on the same synthetic DR10 sweeps, in one
# run. Also the peak memory of the scan on a 1x and a 3x larger file.
#
#   bash bench/scan.sh [FILES] [ROWS_PER_FILE]     (defaults: 4 files x 1,000,000 rows)
#
# Builds and runs the release binary (cargo build --release --workspace
# --bins, into CARGO_TARGET_DIR if set). Needs python3 with numpy + astropy
# (bench/requirements.txt) and bc.
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-4}
rows=${2:-1000000}
cargo build -q --release --workspace --bins >&2
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
lenspipe=$target/release/lenspipe
work=${BENCH_DIR:-/tmp/lenspipe-bench}
cores=$(nproc)
mkdir -p "$work"
data=$work/scan-$files-$rows
[[ -d $data ]] || "$lenspipe" synth --out "$data" --files "$files" --rows-per-file "$rows" --seed 1 >&2
bytes=$(du -cb "$data"/*.fits | tail -1 | cut -f1)
total_rows=$((files * rows))
query="SELECT count(*) AS n FROM sweeps WHERE dec > 0 AND type = 'REX'"

secs() { local s=$EPOCHREALTIME; "$@" >/dev/null; echo "$EPOCHREALTIME - $s" | bc -l; }
best_of() { local n=$1 best=; shift; for _ in $(seq "$n"); do t=$(secs "$@"); if [[ -z $best ]] || (( $(echo "$t < $best" | bc -l) )); then best=$t; fi; done; echo "$best"; }

cat "$data"/*.fits > /dev/null  # warm the page cache: every reader below reads from memory
t_cat=$(best_of 3 bash -c "cat $data/*.fits > /dev/null")
t_scan=$(best_of 3 "$lenspipe" sql "$query" --set "inputs.sweeps=$data/")
py_json=$("python3" bench/scan_numpy.py "$data"/*.fits --workers "$cores")
t_py=$(echo "$py_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
ours=$("$lenspipe" sql "$query" --set "inputs.sweeps=$data/" | grep -Eo '[0-9]+' | tail -1)
theirs=$(echo "$py_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["matched"])')

mb() { echo "scale=1; $bytes / 1000000 / $1" | bc -l; }
mrows() { echo "scale=2; $total_rows / 1000000 / $1" | bc -l; }
echo "| reader | seconds | MB/s | Mrows/s | matched |"
echo "|---|---|---|---|---|"
echo "| cat (read limit) | $(printf %.3f "$t_cat") | $(mb "$t_cat") | | |"
echo "| lenspipe sql, FitsScanExec | $(printf %.3f "$t_scan") | $(mb "$t_scan") | $(mrows "$t_scan") | $ours |"
echo "| astropy + numpy, $cores workers | $(printf %.3f "$t_py") | $(mb "$t_py") | $(mrows "$t_py") | $theirs |"
echo
echo "scan / cat rate: $(echo "scale=2; $t_cat / $t_scan" | bc -l); scan speed-up over astropy+numpy: $(echo "scale=1; $t_py / $t_scan" | bc -l)x"
echo "files: $files x $rows rows, $(echo "scale=2; $bytes/1000000000" | bc -l) GB, $cores cores"
[[ "$ours" == "$theirs" ]] || { echo "MISMATCH: lenspipe counted $ours, astropy $theirs" >&2; exit 1; }
