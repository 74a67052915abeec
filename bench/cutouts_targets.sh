#!/usr/bin/env bash
# Cutout targets never pass through the client: `lenspipe run cutouts` on a
# local Ballista cluster (scheduler + 2 executors, release build) against
# `lenspipe serve-cutouts --synthetic-sky`, for growing numbers of targets.
# Reports wall seconds, cutouts/s, the bytes the client process read
# (files and sockets, /proc/self/io as `lenspipe` logs it at exit) and its
# peak RSS (GNU time); the last line gives client bytes and RSS at the
# largest size over the smallest.
#
#   bash bench/cutouts_targets.sh [N_TARGETS...]   (defaults: 4000 16000 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[[ ${#sizes[@]} -gt 0 ]] || sizes=(4000 16000 100000)
target=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -q --release --workspace --bins
lenspipe=$target/release/lenspipe
work=${BENCH_DIR:-/tmp/lenspipe-bench}/cutouts-targets
rm -rf "$work"
mkdir -p "$work"

"$lenspipe" serve-cutouts --synthetic-sky 1 > "$work/server.out" &
server=$!
export LENSPIPE_CLUSTER_DIR=$work/cluster-state LENSPIPE_BIN_DIR=$target/release EXECUTORS=2
url=$(deploy/local-cluster.sh start | tail -1)
trap 'kill $server 2>/dev/null; deploy/local-cluster.sh stop >/dev/null' EXIT
for _ in $(seq 100); do [[ -s $work/server.out ]] && break; sleep 0.1; done
viewer=$(head -1 "$work/server.out")

echo "machine: $(nproc) cores; 21 x 21 g,r,z cutouts, 1000 targets per shard on average, 2 executors"
echo
echo "| targets | seconds | cutouts/s | client bytes read | client peak RSS MB |"
echo "|---|---|---|---|---|"
first_bytes='' first_rss=''
for n in "${sizes[@]}"; do
  # Targets spread over bricks as a training sample is: galaxy_id, ra, dec,
  # brickname (the DR10 brick naming), label.
  python3 - "$work/targets-$n.parquet" "$n" <<'PY'
import sys, math, pyarrow as pa, pyarrow.parquet as pq
path, n = sys.argv[1], int(sys.argv[2])
ra = [150.0 + (i * 0.618034 % 1.0) * 20.0 for i in range(n)]
dec = [-5.0 + (i * 0.414214 % 1.0) * 10.0 for i in range(n)]
def brick(r, d):
    row = math.floor((d + 90.0) / 0.25)
    dc = row * 0.25 - 90.0 + 0.125
    return f"{int(round(r * 10)):04d}{'m' if dc < 0 else 'p'}{int(round(abs(dc) * 10)):03d}"
pq.write_table(pa.table({"galaxy_id": [f"g{i:08d}" for i in range(n)], "ra": ra, "dec": dec,
                         "brickname": [brick(r, d) for r, d in zip(ra, dec)],
                         "label": [i % 2 for i in range(n)]}), path)
PY
  log=$work/run-$n.log
  s=$EPOCHREALTIME
  RUST_LOG=warn,lenspipe::io=info /usr/bin/time -v "$lenspipe" run cutouts --config paper_iv \
    --scheduler "$url" --set "output=$work/run-$n" --set "inputs.cutout_targets=$work/targets-$n.parquet" \
    --set "cutouts.viewer_url=$viewer" --set cutouts.size=21 --set cutouts.concurrency=16 \
    --set cutouts.rate_per_s=100000 --set cutouts.shard_rows=1000 > /dev/null 2> "$log"
  t=$(echo "$EPOCHREALTIME - $s" | bc -l)
  bytes=$(grep -o 'read_bytes=[0-9]*' "$log" | tail -1 | cut -d= -f2)
  rss=$(awk '/Maximum resident set size/ {print int($6 / 1024)}' "$log")
  made=$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["stages"]["cutouts"]; print(c["rows_made"]); assert c["targets"] == int(sys.argv[2]) and c["status"].get("ok", 0) == int(sys.argv[2]), c["status"]' "$work/run-$n/run.json" "$n")
  echo "| $n | $(printf %.2f "$t") | $(echo "scale=0; $made / $t" | bc -l) | $bytes | $rss |"
  [[ -n $first_bytes ]] || { first_bytes=$bytes; first_rss=$rss; first_n=$n; }
  last_bytes=$bytes last_rss=$rss last_n=$n
done
echo
echo "client at $last_n vs $first_n targets: bytes read $(echo "scale=3; $last_bytes / $first_bytes" | bc -l)x, peak RSS $(echo "scale=3; $last_rss / $first_rss" | bc -l)x, for $(echo "scale=1; $last_n / $first_n" | bc -l)x the targets"
