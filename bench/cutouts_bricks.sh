#!/usr/bin/env bash
# Bricks-mode cutouts per core: lenspipe-coadd (release, one thread, native
# and lanczos3) against astropy Cutout2D on the same RICE_1 compressed
# 3600 x 3600 DR10-layout bricks (written by astropy), 20,000 targets over
# 16 bricks, targets grouped by brick in both. Peak memory from /usr/bin/time.
#
#   bash bench/cutouts_bricks.sh            (BENCH_DIR to keep the bricks elsewhere)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${BENCH_DIR:-${TMPDIR:-/tmp}/lenspipe-bench-bricks}
target=${CARGO_TARGET_DIR:-$PWD/target}
mkdir -p "$work"
bricks=$(python3 - <<'PY'
import json
out = []
for i in range(4):
    for j in range(4):
        ra, dec = 150.0 + 0.25 * i, 1.0 + 0.25 * j
        out.append({"name": f"{int(round(ra * 10)):04d}p{int(round(dec * 10)):03d}", "ra": ra, "dec": dec})
print(json.dumps(out))
PY
)
if [[ ! -f $work/coadds/survey-bricks.fits.gz ]]; then
  echo "writing 16 bricks x 3 bands with astropy..." >&2
  python3 coadd/tests/py/make_bricks.py "$work/coadds" --bricks "$bricks" --size 3600 > /dev/null
fi
if [[ ! -f $work/targets.csv ]]; then
  python3 - "$bricks" "$work/targets.csv" <<'PY'
import json, random, sys, math
bricks, path = json.loads(sys.argv[1]), sys.argv[2]
r = random.Random(1)
with open(path, "w") as f:
    f.write("brickname,ra,dec\n")
    for k in range(20000):
        b = bricks[k % len(bricks)]
        dec = b["dec"] + r.uniform(-0.12, 0.12)
        ra = b["ra"] + r.uniform(-0.12, 0.12) / math.cos(math.radians(dec))
        f.write(f"{b['name']},{ra:.7f},{dec:.7f}\n")
PY
fi
cargo build -q --release -p lenspipe-coadd --example bench_cutouts
run() { /usr/bin/time -f '{"peak_rss_mb": %M}' "$@" 2> >(tail -1 | awk '{ $2 = $2 / 1024; print }' >&2); }
echo "machine: $(nproc) cores, $(grep 'model name' /proc/cpuinfo | head -1 | cut -d: -f2 | xargs)"
for resampling in native lanczos3; do
  run "$target/release/examples/bench_cutouts" "$work/coadds" "$work/targets.csv" "$resampling"
done
run python3 bench/cutouts_astropy.py "$work/coadds" "$work/targets.csv"
