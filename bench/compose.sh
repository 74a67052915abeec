#!/usr/bin/env bash
# The negatives stage on the docker-compose cluster with 1 and 2 executors
# against the same stage embedded in a client container, same sweeps in the
# cluster's S3 store, one run; and the embedded stage reading the same
# sweeps as local files in the client container, for the cost of S3 (s3s-fs
# over the compose network) against a local disk. Release image by default.
#   bash bench/compose.sh [FILES] [ROWS_PER_FILE] [REPEATS]   (defaults: 8 x 250,000, 3)
# Each time is a whole `docker-compose run --rm lenspipe run negatives ...`
# (container start included, the same for every row of the table); the best
# of REPEATS is reported. Executors get no CPU cap here (LENSPIPE_EXECUTOR_CPUS=2),
# so both cluster sizes share the same machine the embedded run has.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
files=${1:-8}
rows=${2:-250000}
repeats=${3:-3}
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
export LENSPIPE_PROFILE=${LENSPIPE_PROFILE:-release}
LENSPIPE_IMAGE=${LENSPIPE_IMAGE:-$(bash "$repo/deploy/build-images.sh" | tail -1)}
export LENSPIPE_IMAGE LENSPIPE_EXECUTOR_CPUS=2 LENSPIPE_EXECUTOR_MEMORY=8g
project=lenspipe-bench-$$
work=$(mktemp -d "${TMPDIR:-/tmp}/lenspipe-compose-bench.XXXXXX")
mkdir -p "$work/s3/lenspipe" "$work/in"
export LENSPIPE_S3_DIR=$work/s3 LENSPIPE_S3_USER="$(id -u):$(id -g)"
export LENSPIPE_SCHEDULER_PORT
LENSPIPE_SCHEDULER_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dc() { "${compose[@]}" -p "$project" -f "$repo/deploy/docker-compose.yml" "$@"; }
trap 'dc down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
client() { dc run --rm -T -u "$(id -u):$(id -g)" -v "$work/in:/in" lenspipe "$@"; }

wait_executors() { # N
  local deadline=$((SECONDS + 120))
  until [[ $(curl -sf "http://127.0.0.1:$LENSPIPE_SCHEDULER_PORT/api/executors" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' 2>/dev/null) == "$1" ]]; do
    (( SECONDS < deadline )) || { echo "bench: executors did not reach $1" >&2; exit 1; }
    sleep 0.5
  done
}

dc up -d --scale lenspipe-executor=1 >/dev/null
wait_executors 1
client synth --out /in/sweeps --files "$files" --rows-per-file "$rows" --seed 1 >&2
client cp /in/sweeps/ s3://lenspipe/sweeps/ >&2
bytes=$(du -sb "$work/in/sweeps" | cut -f1)

args=(run negatives --config paper_iv --set inputs.sweeps=s3://lenspipe/sweeps/ --set inputs.positives=null)
best() { # label command... -> best seconds of $repeats
  local b="" t s
  for _ in $(seq "$repeats"); do
    s=$EPOCHREALTIME
    "$@" > "$work/last.log" 2>&1 || { cat "$work/last.log" >&2; exit 1; }
    t=$(echo "$EPOCHREALTIME - $s" | bc -l)
    if [[ -z $b ]] || (( $(echo "$t < $b" | bc -l) )); then b=$t; fi
  done
  echo "$b"
}
t_local=$(best client run negatives --config paper_iv --set inputs.sweeps=/in/sweeps/ --set inputs.positives=null \
  --set output=s3://lenspipe/runs/local/)
t_embedded=$(best client "${args[@]}" --set output=s3://lenspipe/runs/embedded/)
t_one=$(best client "${args[@]}" --set output=s3://lenspipe/runs/one/ --scheduler df://lenspipe-scheduler:50050)
dc up -d --scale lenspipe-executor=2 >/dev/null
wait_executors 2
t_two=$(best client "${args[@]}" --set output=s3://lenspipe/runs/two/ --scheduler df://lenspipe-scheduler:50050)
kept=$(client cp s3://lenspipe/runs/two/run.json /in/run.json >/dev/null 2>&1 && python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stages"]["negatives"]["kept"])' "$work/in/run.json")

echo "S3 scan throughput, embedded: $(echo "scale=0; $bytes / $t_embedded / 1000000" | bc -l) MB/s of sweep files (local files: $(echo "scale=0; $bytes / $t_local / 1000000" | bc -l) MB/s), whole runs"
echo "negatives stage on the compose cluster: $files x $rows rows ($((bytes / 1000000)) MB) in S3 (s3s-fs), image $LENSPIPE_IMAGE, $(nproc) cores, best of $repeats; kept $kept"
echo "| engine | seconds | ratio to embedded |"
echo "|---|---|---|"
printf '| embedded (client container), sweeps from local files | %.2f | %.2f |\n' "$t_local" "$(echo "$t_local / $t_embedded" | bc -l)"
printf '| embedded (client container) | %.2f | 1.00 |\n' "$t_embedded"
printf '| cluster, 1 executor | %.2f | %.2f |\n' "$t_one" "$(echo "$t_one / $t_embedded" | bc -l)"
printf '| cluster, 2 executors | %.2f | %.2f |\n' "$t_two" "$(echo "$t_two / $t_embedded" | bc -l)"
