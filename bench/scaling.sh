#!/usr/bin/env bash
# Benchmark: how the embedded negatives stage grows with its input, release
# build. For each size: wall time, peak RSS (/usr/bin/time -v), input bytes,
# rows per second and rows per second per core; the same number of files at
# every size, so only the rows grow. Data are synthetic DR10-like sweeps
# (`lenspipe synth`), made once and kept under $BENCH_DIR, read once before
# timing so every size runs from the page cache.
#
#   bash bench/scaling.sh [FILES] [ROWS_PER_FILE ...]
#   (defaults: 4 files of 1,000,000, 4,000,000 and 16,000,000 rows; about
#   2.4, 9.7 and 39 GB, 605 bytes a row)
#
# Needs GNU time (/usr/bin/time; apt-get install time) and bc.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "bench/scaling.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
files=${1:-4}
shift || true
sizes=("$@")
[[ ${#sizes[@]} -gt 0 ]] || sizes=(1000000 4000000 16000000)
target=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release --workspace --bins
lenspipe=$target/release/lenspipe
work=${BENCH_DIR:-/tmp/lenspipe-bench}
cores=$(nproc)
mkdir -p "$work"

echo "| sweep rows | input GB | seconds | rows/s | rows/s per core | peak RSS MB |"
echo "|---|---|---|---|---|---|"
for rows in "${sizes[@]}"; do
  data=$work/scan-$files-$rows
  [[ -d $data ]] || "$lenspipe" synth --out "$data" --files "$files" --rows-per-file "$rows" --seed 1 \
    --plant data/positives/lenscat_catalog.csv >&2
  cat "$data"/*.fits > /dev/null
  bytes=$(du -sb "$data" | cut -f1)
  best_t= best_rss=
  for _ in 1 2; do
    log=$work/scaling-$rows.time
    RUST_LOG=warn,lenspipe::io=info /usr/bin/time -v "$lenspipe" run negatives --config paper_iv \
      --set "inputs.sweeps=$data/" --set "output=$work/scaling-run-$rows" > /dev/null 2> "$log"
    t=$(grep 'Elapsed (wall clock)' "$log" | awk -F': ' '{print $2}' | awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
    rss=$(grep 'Maximum resident set size' "$log" | awk -F': ' '{print $2}')
    if [[ -z $best_t ]] || (( $(echo "$t < $best_t" | bc -l) )); then best_t=$t; fi
    if [[ -z $best_rss ]] || (( rss > best_rss )); then best_rss=$rss; fi
  done
  total=$((files * rows))
  rate=$(echo "$total / $best_t" | bc -l)
  echo "| $total | $(printf %.2f "$(echo "$bytes / 1000000000" | bc -l)") | $(printf %.2f "$best_t") | $(printf %.0f "$rate") | $(printf %.0f "$(echo "$rate / $cores" | bc -l)") | $(( best_rss / 1024 )) |"
done
echo
echo "(best wall time of two runs, largest peak RSS of the two; $cores cores)"
