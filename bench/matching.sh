#!/usr/bin/env bash
# Benchmark: the stratify stage with matched negatives (profile
# paper_iv_matched: seven matched columns) against the same stage without
# matching (paper_iv), on the same negative pool, release build, embedded.
# For each pool size: wall time and peak RSS of each, and their ratio.
#
# The pool is the negatives stage's kept rows. To reach millions of them
# from synthetic sweeps without tens of GB of files, the negatives stage
# runs with a relaxed selection (z < 30, PSF allowed): about 60% of the rows
# are kept. The lenscat lenses are planted, so the positives are real
# catalogue positions on bright hosts.
#
#   bash bench/matching.sh [POOL_ROWS ...]
#   (defaults: 1,000,000 and 4,000,000 pool rows; about 1 and 4 GB of sweeps)
#
# Needs GNU time (/usr/bin/time; apt-get install time) and bc.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "bench/matching.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
pools=("$@")
[[ ${#pools[@]} -gt 0 ]] || pools=(1000000 4000000)
target=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release --workspace --bins
lenspipe=$target/release/lenspipe
work=${BENCH_DIR:-/tmp/lenspipe-bench}
files=4
keep=0.6
relaxed=(--set selection.z_mag_max=30 --set 'selection.types=[SER,DEV,REX,EXP,PSF]')
mkdir -p "$work"

# seconds and peak RSS (MB) of one run, from GNU time's log
measure() { # log
  local t rss
  t=$(grep 'Elapsed (wall clock)' "$1" | awk -F': ' '{print $2}' | awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
  rss=$(grep 'Maximum resident set size' "$1" | awk -F': ' '{print $2}')
  echo "$t $((rss / 1024))"
}

echo "| pool rows | positives | plain s | matched s | matched / plain | plain RSS MB | matched RSS MB | cells |"
echo "|---|---|---|---|---|---|---|---|"
for pool in "${pools[@]}"; do
  rows=$(printf %.0f "$(echo "$pool / $files / $keep" | bc -l)")
  data=$work/matching-$files-$rows
  [[ -d $data ]] || "$lenspipe" synth --out "$data" --files "$files" --rows-per-file "$rows" --seed 1 \
    --plant data/positives/lenscat_catalog.csv >&2
  out=$work/matching-run-$rows
  # The earlier stages once; both profiles share their selection.
  "$lenspipe" run negatives --config paper_iv --set "inputs.sweeps=$data/" --set "output=$out" "${relaxed[@]}" >&2
  "$lenspipe" run positives --config paper_iv --set "inputs.sweeps=$data/" --set "output=$out" "${relaxed[@]}" >&2
  declare -A best_t=() best_rss=()
  for round in 1 2; do
    for profile in paper_iv paper_iv_matched; do
      log=$work/matching-$rows-$profile.time
      /usr/bin/time -v "$lenspipe" run stratify --config "$profile" --set "inputs.sweeps=$data/" \
        --set "output=$out" "${relaxed[@]}" > /dev/null 2> "$log" || { cat "$log" >&2; exit 1; }
      read -r t rss < <(measure "$log")
      if [[ -z ${best_t[$profile]:-} ]] || (( $(echo "$t < ${best_t[$profile]}" | bc -l) )); then best_t[$profile]=$t; fi
      if [[ -z ${best_rss[$profile]:-} ]] || (( rss > best_rss[$profile] )); then best_rss[$profile]=$rss; fi
    done
  done
  summary=$(python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))['stages']
print(s['negatives']['kept'], s['stratify']['positives'], s['stratify']['matching']['cells'])" "$out/run.json")
  read -r kept positives cells <<< "$summary"
  ratio=$(echo "${best_t[paper_iv_matched]} / ${best_t[paper_iv]}" | bc -l)
  echo "| $kept | $positives | $(printf %.2f "${best_t[paper_iv]}") | $(printf %.2f "${best_t[paper_iv_matched]}") | $(printf %.2f "$ratio") | ${best_rss[paper_iv]} | ${best_rss[paper_iv_matched]} | $cells |"
done
echo
echo "(best wall time of two runs each, largest peak RSS; $(nproc) cores; pool = kept negatives)"
