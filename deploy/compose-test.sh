#!/usr/bin/env bash
# The docker-compose cluster started, used and broken on this machine:
#   1. builds the image if needed (deploy/build-images.sh), starts the
#      scheduler, 2 executors, the S3 store and a viewer stand-in;
#   2. writes synthetic sweeps with the lenscat lenses planted and loads them
#      and the catalogue into S3 through `lenspipe cp`;
#   3. runs the Kubernetes Job's command (`run all`, read from
#      deploy/k8s/lenspipe.yaml) through the scheduler and the same command
#      embedded, and checks every stage's rows are equal;
#   4. breaks it with Docker while a job runs: an executor killed, an
#      executor cut off the network, the S3 store restarted, the scheduler
#      killed. Each job must complete with exact, duplicate-free output, or
#      fail clearly with nothing partial visible and a rerun completing.
# It removes only its own containers, network and files, on every exit path,
# and prints one summary line last. Exit status: 0 pass (or a clear SKIP
# where there is no Docker engine), 1 on any failure.
#
# Environment: LENSPIPE_PROFILE (dev by default here: the binaries the tests
# build; release for benchmarks), LENSPIPE_IMAGE (use an existing image),
# COMPOSE_TEST_KEEP=1 (leave the cluster up for a look), COMPOSE_TEST_JOB_TIMEOUT_S
# (seconds a client run may take, default 900), CARGO_TARGET_DIR.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { echo "compose-test: $*" >&2; }

if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  echo "compose-test: SKIPPED: no Docker engine reachable here (docker info failed)"
  exit 0
fi
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose=(docker-compose)
else
  echo "compose-test: SKIPPED: Docker has no Compose (neither 'docker compose' nor docker-compose)"
  exit 0
fi
# What the checks below use, named when missing (never a wrong diagnosis later).
missing=()
for tool in curl python3 objcopy; do command -v "$tool" >/dev/null || missing+=("$tool"); done
for module in pyarrow yaml; do
  python3 -c "import $module" 2>/dev/null || missing+=("python3 module $module")
done
if (( ${#missing[@]} )); then
  echo "compose-test: FAIL: missing $(IFS=,; echo "${missing[*]}" | sed 's/,/, /g') (bash scripts/install-test-deps.sh installs them)"
  exit 1
fi

export LENSPIPE_PROFILE=${LENSPIPE_PROFILE:-dev}
if [[ -z ${LENSPIPE_IMAGE:-} ]]; then
  LENSPIPE_IMAGE=$(bash "$repo/deploy/build-images.sh" | tail -1)
fi
export LENSPIPE_IMAGE
project=lenspipe-ct-$$
work=$(mktemp -d "${TMPDIR:-/tmp}/lenspipe-compose-test.XXXXXX")
mkdir -p "$work/s3/lenspipe" "$work/in" "$work/out"
export LENSPIPE_S3_DIR=$work/s3
# Files the containers write into $work belong to the caller, so cleanup needs no root.
uid="$(id -u):$(id -g)"
export LENSPIPE_S3_USER=$uid
export LENSPIPE_SCHEDULER_PORT
LENSPIPE_SCHEDULER_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Quick failure detection, so a lost executor is noticed within seconds.
export LENSPIPE_EXECUTOR_TIMEOUT_S=8 LENSPIPE_EXPIRE_INTERVAL_S=1 LENSPIPE_HEARTBEAT_S=1
network=${project}_lenspipe
results=()
status=fail

dc() { "${compose[@]}" -p "$project" -f "$repo/deploy/docker-compose.yml" --profile synthetic-sky "$@"; }

cleanup() {
  local rc=$?
  if [[ ${COMPOSE_TEST_KEEP:-0} == 1 ]]; then
    say "left running (COMPOSE_TEST_KEEP=1): project $project, files in $work"
  else
    dc down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true
    docker ps -aq --filter "label=com.docker.compose.project=$project" | xargs -r docker rm -f >/dev/null 2>&1 || true
    rm -rf "$work"
  fi
  if [[ $status != pass ]]; then
    echo "compose-test: FAIL (exit $rc) after: ${results[*]:-nothing}"
    exit 1
  fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() { say "FAILED: $*"; exit 1; }

# `lenspipe` in a client container on the cluster's network. A job that
# hangs counts as a failure: no run here needs more than the timeout.
client() {
  timeout "${COMPOSE_TEST_JOB_TIMEOUT_S:-900}" \
    "${compose[@]}" -p "$project" -f "$repo/deploy/docker-compose.yml" \
    run --rm -T -u "$uid" -v "$work/in:/in" -v "$work/out:/out" lenspipe "$@"
}

container() { # service index -> container id
  docker ps -q --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$1" \
    --filter "label=com.docker.compose.container-number=$2"
}

scheduler_api() { curl -sf "http://127.0.0.1:$LENSPIPE_SCHEDULER_PORT/api/$1"; }

wait_until() { # seconds description command...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || fail "timed out waiting for $what"
    sleep 0.5
  done
}

all_healthy() {
  local ids id state
  ids=$(dc ps -q)
  [[ -n $ids ]] || return 1
  for id in $ids; do
    state=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id")
    [[ $state == healthy ]] || return 1
  done
}

executors_registered() { # at least N
  [[ $(scheduler_api executors | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))') -ge $1 ]]
}

tasks_seen() { # log lines of executors that name a task received
  local n=0 id
  for id in $(dc ps -q lenspipe-executor); do
    n=$((n + $(docker logs "$id" 2>&1 | grep -c -e 'Received task' -e 'Execute task' || true)))
  done
  echo "$n"
}

# --- 1. the cluster -------------------------------------------------------
say "image $LENSPIPE_IMAGE; project $project"
dc up -d --scale lenspipe-executor=2 >/dev/null
wait_until 120 "every service healthy" all_healthy
wait_until 60 "2 executors registered" executors_registered 2
dc ps >&2
published=$(docker ps --filter "label=com.docker.compose.project=$project" --format '{{.Ports}}' | tr ',' '\n' | grep -- '->' | sed 's/^ *//' | sort -u)
[[ $published == "127.0.0.1:$LENSPIPE_SCHEDULER_PORT->50050/tcp" ]] || fail "published ports are not just the scheduler on loopback: $published"
results+=("cluster=scheduler+2executors+s3+viewer,healthy")

# --- 2. data into S3 ------------------------------------------------------
cp "$repo/data/positives/lenscat_catalog.csv" "$work/in/"
client synth --out /in/sweeps --files 6 --rows-per-file 40000 --seed 5 --plant /in/lenscat_catalog.csv >&2
client cp /in/sweeps/ s3://lenspipe/sweeps/ >&2
client cp /in/lenscat_catalog.csv s3://lenspipe/catalogs/lenscat_catalog.csv >&2

# --- 3. run all: the Kubernetes Job's command, on the cluster and embedded -
mapfile -t job < <(python3 - "$repo/deploy/k8s/lenspipe.yaml" <<'EOF'
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc["kind"] == "Job":
        c = doc["spec"]["template"]["spec"]["containers"][0]
        for a in c["command"][1:] + c["args"]:
            print(a.replace("YOUR-BUCKET", "lenspipe"))
EOF
)
[[ ${#job[@]} -gt 3 ]] || fail "no Job command in deploy/k8s/lenspipe.yaml"
# The test's own settings: the stand-in viewer, small partitions for many tasks.
test_sets=(--set cutouts.viewer_url=http://lenspipe-viewer:8080/viewer/fits-cutout
  --set cutouts.concurrency=16 --set cutouts.rate_per_s=2000 --set scan.target_partition_mib=1)
with_output() { # url: the Job's args with the output replaced
  local a
  for a in "${job[@]}"; do
    if [[ $a == output=* ]]; then echo "output=$1"; else echo "$a"; fi
  done
}
without_scheduler() {
  local skip=0 a
  for a in "$@"; do
    if (( skip )); then skip=0; continue; fi
    if [[ $a == --scheduler ]]; then skip=1; continue; fi
    echo "$a"
  done
}
mapfile -t cluster_args < <(with_output s3://lenspipe/runs/cluster/)
mapfile -t embedded_args < <(without_scheduler $(with_output s3://lenspipe/runs/embedded/))
say "run all on the cluster: lenspipe ${cluster_args[*]}"
client "${cluster_args[@]}" "${test_sets[@]}" > "$work/cluster.log" 2>&1 || { cat "$work/cluster.log" >&2; fail "run all on the cluster"; }
say "run all embedded in a client container"
client "${embedded_args[@]}" "${test_sets[@]}" > "$work/embedded.log" 2>&1 || { cat "$work/embedded.log" >&2; fail "run all embedded"; }
client cp s3://lenspipe/runs/ /out/runs/ >&2

compare() { # a b keys ignore what -> prints rows; fails on any difference
  python3 "$repo/tests/py/compare_tables.py" "$1" "$2" --keys "$3" --ignore "$4" > "$work/compare.json"
  python3 - "$work/compare.json" "$5" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
what = sys.argv[2]
problems = []
if r["rows_a"] == 0: problems.append("no rows")
if r["rows_a"] != r["rows_b"]: problems.append(f"rows {r['rows_a']} != {r['rows_b']}")
if r["duplicate_keys_a"] or r["duplicate_keys_b"]: problems.append("duplicate keys")
if r["differing_rows"]: problems.append(f"{r['differing_rows']} rows differ: {r['differences'][:3]}")
if problems:
    sys.exit(f"{what}: " + "; ".join(problems))
print(r["rows_a"])
EOF
}
out=$work/out/runs
for spec in "negatives sweep_file,row_index" "positives lens_id" "sample label,sweep_file,row_index,lens_name" "cutouts galaxy_id"; do
  read -r stage keys <<< "$spec"
  ignore=extraction_timestamp
  [[ $stage == cutouts ]] && ignore=""
  compare "$out/embedded/$stage" "$out/cluster/$stage" "$keys" "$ignore" "$stage: cluster against embedded" > /dev/null \
    || fail "$stage differs between the cluster and embedded"
done
read -r rows_in kept < <(python3 -c '
import json, sys
n = json.load(open(sys.argv[1]))["stages"]["negatives"]
print(n["input_rows"], n["kept"])' "$out/cluster/run.json")
results+=("rows_in=$rows_in" "kept=$kept" "run_all_equals_embedded=negatives,positives,sample,cutouts")

# --- 4. faults ------------------------------------------------------------
reference=$out/embedded/negatives
negatives_args() { # output url
  local a
  for a in "${cluster_args[@]}"; do
    case $a in
      all) echo negatives ;;
      output=*) echo "output=$1" ;;
      *) echo "$a" ;;
    esac
  done
  echo --set; echo scan.target_partition_mib=1
}

start_job() { # name: runs `run negatives` in the background; sets job_pid
  mapfile -t args < <(negatives_args "s3://lenspipe/runs/$1/")
  tasks_before=$(tasks_seen)
  client "${args[@]}" > "$work/$1.log" 2>&1 &
  job_pid=$!
  local deadline=$((SECONDS + 120))
  # The negatives job is one stage: its first task is already the scan.
  until (( $(tasks_seen) > tasks_before )); do
    kill -0 "$job_pid" 2>/dev/null || fail "$1: the job ended before the fault could be injected"
    (( SECONDS < deadline )) || fail "$1: no task started within 120 s"
    sleep 0.2
  done
}

# A failed stage commits nothing (no _SUCCESS) and adds no run.json entry.
# (The lens catalogue snapshot under catalog/ is written before the stage
# runs, for the executors to read; it is an input copy, replaced by the next
# run.) Shards may still be staged in the failed run's version folder: the
# client removes what it staged when it gives up, but tasks that were
# already running when the scheduler died finish and write afterwards. No
# reader sees them (readers follow _SUCCESS), and the next commit removes
# them: only_committed checks that after the rerun.
nothing_visible() { # name
  local staged
  staged=$(find "$work/out/$1/negatives" -name '*.parquet' 2>/dev/null | wc -l || true)
  [[ ! -e $work/out/$1/negatives/_SUCCESS ]] || fail "$1: the job failed but committed output"
  [[ ! -e $work/out/$1/run.json ]] || fail "$1: the job failed but run.json records it"
  say "$1: nothing committed; $staged shard(s) of the failed run still staged, for the next commit to remove"
}

# After a commit, the output folder holds exactly the files _SUCCESS names.
only_committed() { # name
  python3 - "$work/out/$1/negatives" "$1" <<'EOF'
import json, os, sys
folder, name = sys.argv[1], sys.argv[2]
named = {f["path"] for f in json.load(open(os.path.join(folder, "_SUCCESS")))["files"]}
found = {os.path.relpath(os.path.join(d, f), folder)
         for d, _, files in os.walk(folder) for f in files if f.endswith(".parquet")}
if found != named:
    sys.exit(f"compose-test: {name}: after the rerun's commit the folder holds {sorted(found - named)[:3]} "
             f"beyond what _SUCCESS names, or lacks {sorted(named - found)[:3]}")
EOF
}

# Waits for the job; checks its output is exact, or that it failed clearly
# with nothing visible and that a rerun completes. Appends the outcome.
judge() { # name
  local name=$1 rc=0
  wait "$job_pid" || rc=$?
  rm -rf "$work/out/$name"
  client cp "s3://lenspipe/runs/$name/" "/out/$name/" >/dev/null 2>&1 || true
  if (( rc == 0 )); then
    compare "$reference" "$work/out/$name/negatives" "sweep_file,row_index" extraction_timestamp "$name" >/dev/null \
      || fail "$name: the job succeeded but its output is not exact"
    say "$name: the job completed; its output is exact and duplicate-free"
    results+=("$name=completed-exact")
  else
    grep -q 'lenspipe: ' "$work/$name.log" || { cat "$work/$name.log" >&2; fail "$name: failed without a lenspipe error message"; }
    nothing_visible "$name"
    say "$name: failed clearly: $(grep 'lenspipe: ' "$work/$name.log" | tail -1 | cut -c1-200)"
    mapfile -t args < <(negatives_args "s3://lenspipe/runs/$name/")
    client "${args[@]}" > "$work/$name-rerun.log" 2>&1 || { cat "$work/$name-rerun.log" >&2; fail "$name: the rerun failed"; }
    rm -rf "$work/out/$name"
    client cp "s3://lenspipe/runs/$name/" "/out/$name/" >/dev/null
    compare "$reference" "$work/out/$name/negatives" "sweep_file,row_index" extraction_timestamp "$name rerun" >/dev/null \
      || fail "$name: the rerun's output is not exact"
    only_committed "$name" || fail "$name: the rerun's commit left other files"
    results+=("$name=failed-clearly+rerun-exact")
  fi
}

restore() { # every service back up and 2 executors registered
  dc up -d --scale lenspipe-executor=2 >/dev/null
  wait_until 120 "every service healthy again" all_healthy
  wait_until 60 "2 executors registered again" executors_registered 2
}

say "fault: docker kill one executor mid-job"
start_job executor-kill
docker kill "$(container lenspipe-executor 2)" >/dev/null
judge executor-kill
restore

say "fault: docker network disconnect one executor mid-job, reconnect after the executor timeout"
start_job network-cut
victim=$(container lenspipe-executor 1)
docker network disconnect "$network" "$victim"
sleep $((LENSPIPE_EXECUTOR_TIMEOUT_S + 4))
docker network connect --alias lenspipe-executor "$network" "$victim"
judge network-cut
restore

say "fault: docker restart the S3 store mid-job"
start_job s3-restart
docker restart -t 0 "$(container lenspipe-s3 1)" >/dev/null
judge s3-restart
restore

say "fault: docker kill the scheduler mid-job"
start_job scheduler-kill
docker kill "$(container lenspipe-scheduler 1)" >/dev/null
rc=0
wait "$job_pid" || rc=$?
(( rc != 0 )) || fail "scheduler-kill: the client exited 0 with its scheduler gone"
grep -q 'lenspipe: ' "$work/scheduler-kill.log" || { cat "$work/scheduler-kill.log" >&2; fail "scheduler-kill: no clear error message"; }
say "scheduler-kill: client failed clearly: $(grep 'lenspipe: ' "$work/scheduler-kill.log" | tail -1 | cut -c1-200)"
restore
client cp "s3://lenspipe/runs/scheduler-kill/" /out/scheduler-kill/ >/dev/null 2>&1 || true
nothing_visible scheduler-kill
mapfile -t args < <(negatives_args "s3://lenspipe/runs/scheduler-kill/")
client "${args[@]}" > "$work/scheduler-kill-rerun.log" 2>&1 || { cat "$work/scheduler-kill-rerun.log" >&2; fail "scheduler-kill: the rerun after a restart failed"; }
rm -rf "$work/out/scheduler-kill"
client cp s3://lenspipe/runs/scheduler-kill/ /out/scheduler-kill/ >/dev/null
compare "$reference" "$work/out/scheduler-kill/negatives" "sweep_file,row_index" extraction_timestamp "scheduler-kill rerun" >/dev/null \
  || fail "scheduler-kill: the rerun's output is not exact"
only_committed scheduler-kill || fail "scheduler-kill: the rerun's commit left other files"
results+=("scheduler-kill=failed-clearly+rerun-exact")

status=pass
trap - EXIT
cleanup_ok() { dc down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true; rm -rf "$work"; }
[[ ${COMPOSE_TEST_KEEP:-0} == 1 ]] || cleanup_ok
echo "compose-test: PASS ${results[*]}"
