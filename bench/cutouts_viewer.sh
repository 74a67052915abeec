#!/usr/bin/env bash
# Viewer-mode cutouts: `lenspipe run cutouts` (release) against `lenspipe
# serve-cutouts` with 100 ms injected latency, concurrency 16: cutouts/s
# against the ideal concurrency / latency = 160/s, and against the request's
# way (a sequential requests + astropy loop) on the same server.
#
#   bash bench/cutouts_viewer.sh [N_TARGETS]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-800}
work=$(mktemp -d)
target=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -q --release --workspace --bins
lenspipe=$target/release/lenspipe
"$lenspipe" serve-cutouts --synthetic-sky 1 --latency-ms 100 > "$work/server.out" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [[ -s $work/server.out ]] && break; sleep 0.1; done
url=$(head -1 "$work/server.out")
python3 - "$work/targets.parquet" "$n" <<'PY'
import sys, pyarrow as pa, pyarrow.parquet as pq
path, n = sys.argv[1], int(sys.argv[2])
pq.write_table(pa.table({"galaxy_id": [f"g{i:05d}" for i in range(n)],
                         "ra": [150.0 + i * 0.01 for i in range(n)], "dec": [2.0 + i * 0.005 for i in range(n)],
                         "label": [i % 2 for i in range(n)]}), path)
PY
echo "machine: $(nproc) cores; $n targets, 100 ms latency, concurrency 16"
"$lenspipe" run cutouts --config paper_iv --set "output=$work/run" --set "inputs.cutout_targets=$work/targets.parquet" \
  --set "cutouts.viewer_url=$url" --set cutouts.concurrency=16 --set cutouts.rate_per_s=10000 --set cutouts.shard_rows=${SHARD_ROWS:-100} > /dev/null
python3 - "$work/run/run.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["stages"]["cutouts"]
rate = c["rows_made"] / c["timings_s"]["total"]
print(json.dumps({"tool": "lenspipe run cutouts", "cutouts": c["rows_made"], "seconds": round(c["timings_s"]["total"], 2),
                  "per_s": round(rate, 1), "fraction_of_ideal_160": round(rate / 160, 3), "status": c["status"]}))
PY
python3 viewer/bench/sequential_requests.py --url "$url" --n 100 --layer ls-dr10-south
