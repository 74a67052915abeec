#!/usr/bin/env bash
# Benchmark: the negatives stage embedded versus a local Ballista
# cluster of 2 executors on this machine, same files, one run.
#   bash bench/cluster.sh [FILES] [ROWS_PER_FILE]   (defaults: 4 x 1,000,000)
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-4}
rows=${2:-1000000}
target=${CARGO_TARGET_DIR:-$PWD/target}
lenspipe=$target/debug/lenspipe
work=${BENCH_DIR:-/tmp/lenspipe-bench}
data=$work/scan-$files-$rows
[[ -d $data ]] || "$lenspipe" synth --out "$data" --files "$files" --rows-per-file "$rows" --seed 1 >&2
cat "$data"/*.fits > /dev/null
run() { # label, extra args...
  local label=$1; shift
  local s=$EPOCHREALTIME
  "$lenspipe" run negatives --config paper_iv --set "inputs.sweeps=$data/" --set "output=$work/cluster-bench-$label" \
    --set inputs.positives=null "$@" > /dev/null
  echo "$EPOCHREALTIME - $s" | bc -l
}
t_embedded=$(run embedded)
export LENSPIPE_CLUSTER_DIR=$work/cluster-state LENSPIPE_BIN_DIR=$target/debug EXECUTORS=2
url=$(deploy/local-cluster.sh start | tail -1)
trap 'deploy/local-cluster.sh stop >/dev/null' EXIT
t_cluster=$(run cluster --scheduler "$url")
echo "| engine | seconds |"
echo "|---|---|"
echo "| embedded | $(printf %.2f "$t_embedded") |"
echo "| local cluster, 2 executors ($url) | $(printf %.2f "$t_cluster") |"
echo "distribution overhead: $(echo "scale=2; $t_cluster / $t_embedded" | bc -l)x the embedded time on $files x $rows rows"
