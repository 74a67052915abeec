#!/usr/bin/env bash
# The whole test suite, one command on a machine that never ran it before:
#   1. installs what the tests need, only where missing
#      (scripts/install-test-deps.sh), while
#   2. cargo builds the binaries the end-to-end tests start;
#   3. runs every test of the workspace, all of them even after a failure
#      (--no-fail-fast);
#   4. runs the docker-compose cluster test (deploy/compose-test.sh), also
#      after a Rust test failed.
# Ends with one summary line; exit status 1 if anything failed.
# Environment: CARGO_TARGET_DIR; TEST_THREADS (tests run at once per test
# binary, default 2).
set -uo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
say() { echo "test.sh: $*" >&2; }
summary() { # verdict details...
  local verdict=$1; shift
  echo "test.sh: $verdict: $* ($((SECONDS - started)) s)"
  [[ $verdict == PASS ]]
  exit
}

# The dependencies download while cargo builds: on a fresh machine both take minutes.
deps_log=$(mktemp "${TMPDIR:-/tmp}/lenspipe-test-deps.XXXXXX")
say "1/4 test dependencies, in the background (scripts/install-test-deps.sh, log $deps_log)"
bash scripts/install-test-deps.sh >"$deps_log" 2>&1 &
deps=$!

say "2/4 cargo build --workspace --bins"
cargo build --workspace --bins || { wait "$deps"; summary FAIL "the build failed (see above)"; }
deps_rc=0
wait "$deps" || deps_rc=$?
cat "$deps_log" >&2
rm -f "$deps_log"
(( deps_rc == 0 )) || summary FAIL "test dependencies could not be installed (see above)"

log=$(mktemp "${TMPDIR:-/tmp}/lenspipe-test.XXXXXX")
say "3/4 cargo test --workspace --no-fail-fast (output also in $log)"
cargo test --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-2}" 2>&1 | tee "$log"
rust_rc=${PIPESTATUS[0]}
# "test result: FAILED. 3 passed; 1 failed; 0 ignored; ..." per test binary.
read -r passed failed < <(awk '/^test result:/ {
    for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i }
  } END { print p + 0, f + 0 }' "$log")
# cargo lists the test binaries that failed, one "`-p crate --test name`" a line.
failed_targets=$(grep -o '`-p [^`]*`' "$log" | tr -d '`' | paste -sd, - | sed "s/,/, /g" || true)
rust="rust tests: $passed passed, $failed failed"
if (( rust_rc != 0 )); then
  rust+=" in ${failed_targets:-a target that did not build} (log $log)"
else
  rm -f "$log"
fi

say "4/4 bash deploy/compose-test.sh"
compose_out=$(mktemp "${TMPDIR:-/tmp}/lenspipe-compose.XXXXXX")
bash deploy/compose-test.sh | tee "$compose_out"
compose_rc=${PIPESTATUS[0]}
compose=$(tail -1 "$compose_out" | cut -c1-160)
rm -f "$compose_out"

if (( rust_rc == 0 && compose_rc == 0 )); then
  summary PASS "$rust; $compose"
else
  summary FAIL "$rust; $compose"
fi
