#!/usr/bin/env bash
# Benchmark: the scan's peak memory does not grow with the file size.
# Scans one synthetic sweep of N rows and one of 3N rows, reports peak RSS.
#   bash bench/scan_memory.sh [ROWS]   (default 2,000,000 rows, about 1.2 GB, and 3x that)
# Builds and runs the release binary (into CARGO_TARGET_DIR if set); needs
# GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-2000000}
cargo build -q --release --workspace --bins >&2
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
lenspipe=$target/release/lenspipe
work=${BENCH_DIR:-/tmp/lenspipe-bench}
query="SELECT count(*) AS n FROM sweeps WHERE dec > 0 AND type = 'REX'"
echo "| file | GB | peak RSS MB | seconds |"
echo "|---|---|---|---|"
for n in "$rows" $((3 * rows)); do
  data=$work/mem-$n
  [[ -d $data ]] || "$lenspipe" synth --out "$data" --files 1 --rows-per-file "$n" --seed 2 >&2
  gb=$(du -cb "$data"/*.fits | tail -1 | awk '{printf "%.2f", $1/1e9}')
  /usr/bin/time -f "%M %e" -o "$work/time.txt" "$lenspipe" sql "$query" --set "inputs.sweeps=$data/" > /dev/null
  read -r kb secs < "$work/time.txt"
  echo "| 1 file x $n rows | $gb | $((kb / 1024)) | $secs |"
done
