#!/usr/bin/env bash
# Peak memory of `lenspipe run cutouts` (release) when the viewer never ends
# its answers: against `lenspipe serve-cutouts` answering every request 200
# with an endless body (no Content-Length), one whose Content-Length claims
# 10 GiB, and, as the baseline in the same run, one answering normally.
# Goal: every target ends bad_response with the client's peak RSS under
# 300 MB (before the client read answers against a budget, four targets at
# concurrency 4 took it to 2,259 MB).
#
#   bash bench/viewer_runaway.sh [N_TARGETS] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-64}
concurrency=${2:-16}
work=$(mktemp -d)
target=${CARGO_TARGET_DIR:-$PWD/target}
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }
cargo build --release --workspace --bins
lenspipe=$target/release/lenspipe
servers=()
trap 'kill "${servers[@]}" 2>/dev/null; rm -rf "$work"' EXIT

python3 - "$work/targets.parquet" "$n" <<'PY'
import sys, pyarrow as pa, pyarrow.parquet as pq
path, n = sys.argv[1], int(sys.argv[2])
pq.write_table(pa.table({"galaxy_id": [f"g{i:05d}" for i in range(n)],
                         "ra": [150.0 + i * 0.01 for i in range(n)], "dec": [2.0 + i * 0.005 for i in range(n)],
                         "label": [i % 2 for i in range(n)]}), path)
PY

# serve NAME FAULTS_JSON: starts a server, sets $url.
serve() {
  local name=$1 faults=$2
  echo "$faults" > "$work/$name.json"
  "$lenspipe" serve-cutouts --synthetic-sky 1 --faults "$work/$name.json" > "$work/$name.out" 2>/dev/null &
  servers+=($!)
  for _ in $(seq 100); do [[ -s $work/$name.out ]] && break; sleep 0.1; done
  url=$(head -1 "$work/$name.out")
}

echo "machine: $(nproc) cores; $n targets, concurrency $concurrency"
for name in normal endless oversized; do
  case $name in
    normal) serve $name '{"latency_ms": 0, "rules": []}' ;;
    endless) serve $name '{"latency_ms": 0, "rules": [{"kind": "endless", "fraction": 1.0, "first": 1000}]}' ;;
    oversized) serve $name '{"latency_ms": 0, "rules": [{"kind": "oversized", "content_length": 10737418240, "fraction": 1.0, "first": 1000}]}' ;;
  esac
  /usr/bin/time -f '%M %e' -o "$work/$name.time" "$lenspipe" run cutouts --config paper_iv \
    --set "output=$work/$name" --set "inputs.cutout_targets=$work/targets.parquet" \
    --set "cutouts.viewer_url=$url" --set "cutouts.concurrency=$concurrency" \
    --set cutouts.rate_per_s=10000 --set cutouts.max_retries=2 > /dev/null 2> "$work/$name.err" \
    || { echo "$name: lenspipe failed:" >&2; tail -5 "$work/$name.err" >&2; exit 1; }
  read -r kib seconds < "$work/$name.time"
  python3 - "$work/$name/run.json" "$name" "$kib" "$seconds" <<'PY'
import json, sys
path, name, kib, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
c = json.load(open(path))["stages"]["cutouts"]
print(json.dumps({"viewer": name, "peak_rss_mb": round(kib / 1024, 1), "seconds": seconds,
                  "targets": c["targets"], "status": c["status"], "attempts": c["attempts"]}))
PY
done
