#!/usr/bin/env bash
# Where bricks-mode cutout time goes: perf's cpu-clock samples of the
# bench_cutouts example (built with the `profiling` profile: release code
# with line tables) on the bricks and targets bench/cutouts_bricks.sh writes,
# one core, grouped into the stages of a cutout.
#
#   bash bench/cutouts_bricks.sh                 (writes the bricks first)
#   bash bench/cutouts_bricks_profile.sh [sparse|dense|dense250] [native|lanczos3]
# Needs perf (Debian: linux-perf).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${BENCH_DIR:-${TMPDIR:-/tmp}/lenspipe-bench-bricks}
density=${1:-sparse} resampling=${2:-native}
csv=$work/targets-$density.csv
[[ -f $csv ]] || { echo "no $csv: run bench/cutouts_bricks.sh first" >&2; exit 1; }
cargo build -q --profile profiling -p lenspipe-coadd --example bench_cutouts
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin=$target/profiling/examples/bench_cutouts
data=$(mktemp "${TMPDIR:-/tmp}/lenspipe-perf.XXXXXX")
trap 'rm -f "$data"' EXIT
# Repeat the run so short ones collect enough samples.
perf record -q -e cpu-clock -F 20000 -o "$data" -- taskset -c 0 bash -c \
  "for i in 1 2 3 4 5; do '$bin' '$work/coadds' '$csv' $resampling > /dev/null; done" 2>/dev/null
perf report -i "$data" --no-children --sort symbol --stdio 2>/dev/null | python3 -c '
import re, sys
# Each stage of a cutout, by the functions that do it (first match wins).
stages = [
    ("Rice decoding", r"rice::|decode_in_place"),
    ("unquantising (dither)", r"dither::|Dequantizer"),
    ("HCOMPRESS decoding", r"hcompress::"),
    ("resampling (Lanczos-3 taps, mapping grid)", r"resample::"),
    ("copying tiles into the stamp", r"copy_overlap|Band.*region|cutout::"),
    ("tile cache", r"TileCache|hashbrown|HashMap"),
    ("headers, tile tables, WCS", r"header::|Layout|column::|wcs::|Tan::"),
    ("memory (page faults, allocation, copies)", r"memcpy|memset|memmove|malloc|free|clear_page|page_fault|do_anonymous|filemap|_raw_spin|mmap|munmap|alloc::"),
    ("kernel: process start and exit, files", r"\[k\]"),
]
share = {name: 0.0 for name, _ in stages}
other = 0.0
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+)%\s+\[[.k]\]\s+(.*)", line)
    if not m:
        continue
    pct, sym = float(m.group(1)), line
    for name, pattern in stages:
        if re.search(pattern, sym):
            share[name] += pct
            break
    else:
        other += pct
print("| stage | share of samples |")
print("|---|---|")
for name, pct in sorted(share.items(), key=lambda kv: -kv[1]):
    if pct >= 0.05:
        print(f"| {name} | {pct:.1f}% |")
print(f"| other | {other:.1f}% |")
'
