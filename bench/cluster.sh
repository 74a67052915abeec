#!/usr/bin/env bash
# Benchmark: the negatives stage embedded versus a local Ballista cluster
# (scheduler + 2 executors on this machine), release build, same files, one
# run; and the bytes the client process reads (files and sockets, from
# /proc/self/io as `lenspipe` logs it at exit) for two input sizes with the
# same number of files: the executors write the output, so the client's
# bytes must not grow with the rows.
#
#   bash bench/cluster.sh [FILES] [ROWS_SMALL] [ROWS_LARGE]   (defaults: 4, 250000, 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-4}
rows_small=${2:-250000}
rows_large=${3:-1000000}
target=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -q --release --workspace --bins
lenspipe=$target/release/lenspipe
work=${BENCH_DIR:-/tmp/lenspipe-bench}
mkdir -p "$work"

# Seconds and client bytes read of one run: "SECONDS BYTES".
run() { # data label [--scheduler URL]
  local data=$1 label=$2; shift 2
  local log=$work/cluster-bench-$label.log s=$EPOCHREALTIME
  RUST_LOG=warn,lenspipe::io=info "$lenspipe" run negatives --config paper_iv \
    --set "inputs.sweeps=$data/" --set "output=$work/cluster-bench-$label" "$@" > /dev/null 2> "$log"
  local t; t=$(echo "$EPOCHREALTIME - $s" | bc -l)
  echo "$t $(grep -o 'read_bytes=[0-9]*' "$log" | tail -1 | cut -d= -f2)"
}
best() { # runs "SECONDS BYTES" lines on stdin; the fastest
  sort -n | head -1
}

export LENSPIPE_CLUSTER_DIR=$work/cluster-state LENSPIPE_BIN_DIR=$target/release EXECUTORS=2
url=$(deploy/local-cluster.sh start | tail -1)
trap 'deploy/local-cluster.sh stop >/dev/null' EXIT

echo "| sweep rows | engine | seconds | ratio to embedded | client bytes read |"
echo "|---|---|---|---|---|"
declare -A bytes_of
for rows in "$rows_small" "$rows_large"; do
  data=$work/scan-$files-$rows
  [[ -d $data ]] || "$lenspipe" synth --out "$data" --files "$files" --rows-per-file "$rows" --seed 1 \
    --plant data/positives/lenscat_catalog.csv >&2
  cat "$data"/*.fits > /dev/null
  read -r t_embedded b_embedded < <(for _ in 1 2; do run "$data" "embedded-$rows"; done | best)
  read -r t_cluster b_cluster < <(for _ in 1 2; do run "$data" "cluster-$rows" --scheduler "$url"; done | best)
  total=$((files * rows))
  echo "| $total | embedded | $(printf %.2f "$t_embedded") | 1.00 | $b_embedded |"
  echo "| $total | cluster, 2 executors | $(printf %.2f "$t_cluster") | $(echo "scale=2; $t_cluster / $t_embedded" | bc -l) | $b_cluster |"
  bytes_of[$rows]=$b_cluster
  python3 tests/py/compare_tables.py "$work/cluster-bench-embedded-$rows/negatives" \
    "$work/cluster-bench-cluster-$rows/negatives" --keys sweep_file,row_index \
    --ignore extraction_timestamp > "$work/cluster-bench-compare.json"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if not d["differences"] and d["rows_a"]==d["rows_b"] and not d["duplicate_keys_b"] else "cluster and embedded kept different rows")' \
    "$work/cluster-bench-compare.json"
done
echo
echo "client bytes read on the cluster, ${rows_large} vs ${rows_small} rows per file: $(echo "scale=3; ${bytes_of[$rows_large]} / ${bytes_of[$rows_small]}" | bc -l)x for $(echo "scale=1; $rows_large / $rows_small" | bc -l)x the rows"
