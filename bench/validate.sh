#!/usr/bin/env bash
# Validation throughput and memory: `lenspipe run validate` (release) on
# cutouts made by `lenspipe run cutouts` from a synthetic-sky server, for two
# row counts (peak memory should not grow with them); the per-cutout
# statistics alone in Rust (one thread) and in numpy (vectorised, one
# thread) on the same number of cutouts.
#
#   bash bench/validate.sh [SMALL] [LARGE]      (default 5000 and 20000 cutouts)
set -euo pipefail
cd "$(dirname "$0")/.."
small=${1:-5000}
large=${2:-20000}
work=${BENCH_DIR:-${TMPDIR:-/tmp}/lenspipe-bench-validate}
target=${CARGO_TARGET_DIR:-$PWD/target}
mkdir -p "$work"
cargo build -q --release --workspace --bins
lenspipe=$target/release/lenspipe
"$lenspipe" serve-cutouts --synthetic-sky 1 > "$work/server.out" &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 100); do [[ -s $work/server.out ]] && break; sleep 0.1; done
url=$(head -1 "$work/server.out")
echo "machine: $(nproc) cores, $(grep 'model name' /proc/cpuinfo | head -1 | cut -d: -f2 | xargs)"
for n in "$small" "$large"; do
  out=$work/run-$n
  if [[ ! -f $out/cutouts/_SUCCESS ]]; then
    python3 - "$work/targets-$n.parquet" "$n" <<'PY'
import sys, random, pyarrow as pa, pyarrow.parquet as pq
path, n = sys.argv[1], int(sys.argv[2])
r = random.Random(n)
pq.write_table(pa.table({"galaxy_id": [f"g{i:06d}" for i in range(n)], "ra": [r.uniform(0, 360) for _ in range(n)],
                         "dec": [r.uniform(-15, 30) for _ in range(n)], "label": [i % 2 for i in range(n)],
                         "psfdepth_r": [r.gauss(24, 0.3) for _ in range(n)]}), path)
PY
    "$lenspipe" run cutouts --config paper_iv --set "output=$out" --set "inputs.cutout_targets=$work/targets-$n.parquet" \
      --set "cutouts.viewer_url=$url" --set cutouts.concurrency=32 --set cutouts.rate_per_s=100000 --set cutouts.shard_rows=1000 > /dev/null
  fi
  /usr/bin/time -f "%M" -o "$work/rss-$n" "$lenspipe" run validate --config paper_iv --set "output=$out" > /dev/null 2>&1
  python3 - "$out/run.json" "$work/rss-$n" "$n" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))["stages"]["validate"]
rss = int(open(sys.argv[2]).read().split()[-1]) / 1024
print(json.dumps({"tool": "lenspipe run validate", "cutouts": v["cutouts"], "checks_seconds": round(v["timings_s"]["checks"], 2),
                  "total_seconds": round(v["timings_s"]["total"], 2), "checks_per_s": round(v["cutouts_per_s"], 1),
                  "peak_rss_mb": round(rss, 1)}))
PY
done
cargo build -q --release -p lenspipe-validate --example bench_stats
"$target/release/examples/bench_stats" "$large"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python3 validate/bench/stats_numpy.py "$large"
