#!/usr/bin/env bash
# A lenspipe Ballista cluster on this machine: one scheduler and $EXECUTORS
# executors on loopback, on free ports.
#
#   deploy/local-cluster.sh start   # prints df://127.0.0.1:PORT as its last line
#   deploy/local-cluster.sh status
#   deploy/local-cluster.sh stop    # stops exactly the processes start started
#
# Environment: EXECUTORS (default 2), LENSPIPE_BIN_DIR (where lenspipe-scheduler
# and lenspipe-executor are; default: $CARGO_TARGET_DIR/debug, then target/debug),
# LENSPIPE_CLUSTER_DIR (state, logs and executor work dirs; default
# ${TMPDIR:-/tmp}/lenspipe-cluster), LENSPIPE_CLUSTER_WAIT (seconds, default 60),
# LENSPIPE_SCHEDULER_ARGS / LENSPIPE_EXECUTOR_ARGS (extra stock Ballista flags,
# e.g. "--executor-timeout-seconds 10").
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state_dir=${LENSPIPE_CLUSTER_DIR:-${TMPDIR:-/tmp}/lenspipe-cluster}
state_file=$state_dir/pids
executors=${EXECUTORS:-2}
wait_s=${LENSPIPE_CLUSTER_WAIT:-60}

find_bin() {
  local name=$1 dir
  for dir in "${LENSPIPE_BIN_DIR:-}" "${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/debug}" "$here/../target/debug"; do
    if [[ -n "$dir" && -x "$dir/$name" ]]; then echo "$dir/$name"; return; fi
  done
  if command -v "$name" >/dev/null; then command -v "$name"; return; fi
  echo "local-cluster: cannot find $name (build it with 'cargo build -p ${name}' or set LENSPIPE_BIN_DIR)" >&2
  exit 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

alive() { kill -0 "$1" 2>/dev/null; }

wait_for() { # seconds, description, command...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS > deadline )); then echo "local-cluster: timed out waiting for $what" >&2; return 1; fi
    sleep 0.2
  done
}

executor_count() { # port
  curl -sf "http://127.0.0.1:$1/api/executors" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

stop() {
  [[ -f $state_file ]] || { echo "local-cluster: not running (no $state_file)"; return 0; }
  local pids
  pids=$(awk '$1 == "pid" {print $3}' "$state_file")
  for pid in $pids; do alive "$pid" && kill -TERM "$pid" 2>/dev/null || true; done
  local deadline=$((SECONDS + 10))
  for pid in $pids; do
    while alive "$pid" && (( SECONDS < deadline )); do sleep 0.1; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  done
  rm -f "$state_file"
  echo "local-cluster: stopped $(echo $pids | wc -w) processes"
}

start() {
  if [[ -f $state_file ]]; then
    echo "local-cluster: already running ($state_file); stop it first" >&2
    exit 1
  fi
  local scheduler executor port
  scheduler=$(find_bin lenspipe-scheduler)
  executor=$(find_bin lenspipe-executor)
  mkdir -p "$state_dir/logs"
  port=$(free_port)
  : > "$state_file"
  trap 'echo "local-cluster: start failed, stopping what started" >&2; stop >&2' ERR
  # shellcheck disable=SC2086 # extra flags are word-split on purpose
  # Pull scheduling, as in the compose and Kubernetes clusters (docs/deploy.md):
  # tasks reset after an executor is lost are picked up by the next poll.
  "$scheduler" --bind-host 127.0.0.1 --external-host 127.0.0.1 --bind-port "$port" \
    --scheduler-policy pull-staged \
    ${LENSPIPE_SCHEDULER_ARGS:-} > "$state_dir/logs/scheduler.log" 2>&1 &
  echo "pid scheduler $! $port" >> "$state_file"
  wait_for "$wait_s" "the scheduler on port $port" curl -sf "http://127.0.0.1:$port/api/state"
  for i in $(seq 1 "$executors"); do
    local flight grpc
    flight=$(free_port); grpc=$(free_port)
    mkdir -p "$state_dir/work-$i"
    "$executor" --bind-host 127.0.0.1 --external-host 127.0.0.1 \
      --scheduler-host 127.0.0.1 --scheduler-port "$port" \
      --task-scheduling-policy pull-staged \
      --bind-port "$flight" --bind-grpc-port "$grpc" \
      --work-dir "$state_dir/work-$i" ${LENSPIPE_EXECUTOR_ARGS:-} \
      > "$state_dir/logs/executor-$i.log" 2>&1 &
    echo "pid executor-$i $! $flight" >> "$state_file"
  done
  wait_for "$wait_s" "$executors executors to register" \
    bash -c "[[ \$(curl -sf http://127.0.0.1:$port/api/executors | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))') -ge $executors ]]"
  trap - ERR
  echo "local-cluster: scheduler and $executors executors up; logs in $state_dir/logs"
  echo "df://127.0.0.1:$port"
}

status() {
  [[ -f $state_file ]] || { echo "not running"; return 0; }
  while read -r _ name pid port; do
    if alive "$pid"; then echo "$name pid=$pid port=$port up"; else echo "$name pid=$pid port=$port DOWN"; fi
  done < "$state_file"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
