#!/usr/bin/env bash
# Bricks-mode cutouts per core (g, r, z, 101 x 101) on 16 RICE_1 3600 x 3600
# DR10-layout bricks written by astropy, one core (taskset -c 0), release
# build. lenspipe is timed as a whole process (the bench_cutouts example:
# mapping the files, WCS, decoding, cutting), the Python baselines after
# their imports (bench/cutouts_fitsio.py):
#   fitsio     cfitsio reading only the tiles a stamp needs   vs native
#   reproject  fitsio stamp + reproject_interp (bicubic)       vs lanczos3
#   astropy    each band decompressed whole, Cutout2D          vs native
# Densities: sparse (5 targets per brick), dense (60 and 250 per brick).
#
#   pip install -r bench/requirements.txt
#   bash bench/cutouts_bricks.sh            (BENCH_DIR to keep the bricks elsewhere)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${BENCH_DIR:-${TMPDIR:-/tmp}/lenspipe-bench-bricks}
DENSITIES=${DENSITIES:-"sparse:5 dense:60 dense250:250"}
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
for d in $DENSITIES; do
  name=${d%%:*} per=${d##*:}
  [[ -f $work/targets-$name.csv ]] && continue
  python3 - "$bricks" "$work/targets-$name.csv" "$per" <<'PY'
import json, random, sys, math
bricks, path, per = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
r = random.Random(per)
with open(path, "w") as f:
    f.write("brickname,ra,dec\n")
    for b in bricks:
        for _ in range(per):
            dec = b["dec"] + r.uniform(-0.12, 0.12)
            ra = b["ra"] + r.uniform(-0.12, 0.12) / math.cos(math.radians(dec))
            f.write(f"{b['name']},{ra:.7f},{dec:.7f}\n")
PY
done
cargo build -q --release -p lenspipe-coadd --example bench_cutouts
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin=$target/release/examples/bench_cutouts
echo "machine: $(nproc) cores, $(grep 'model name' /proc/cpuinfo | head -1 | cut -d: -f2 | xargs)"
# Wall seconds of a whole process, best of 3.
wall() {
  local best=
  for _ in 1 2 3; do
    local t0 t1
    t0=$(date +%s.%N); taskset -c 0 "$@" > /dev/null; t1=$(date +%s.%N)
    best=$(python3 -c "t = $t1 - $t0; b = '$best'; print(min(t, float(b)) if b else t)")
  done
  echo "$best"
}
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
for d in $DENSITIES; do
  name=${d%%:*}
  csv=$work/targets-$name.csv
  n=$(($(wc -l < "$csv") - 1))
  native=$(wall "$bin" "$work/coadds" "$csv" native)
  lanczos=$(wall "$bin" "$work/coadds" "$csv" lanczos3)
  native_sum=$(taskset -c 0 "$bin" "$work/coadds" "$csv" native | json_field checksum)
  fitsio_out=$(taskset -c 0 python3 bench/cutouts_fitsio.py fitsio "$work/coadds" "$csv")
  fitsio=$(json_field seconds <<< "$fitsio_out")
  fitsio_sum=$(json_field checksum <<< "$fitsio_out")
  repro=$(taskset -c 0 python3 bench/cutouts_fitsio.py reproject "$work/coadds" "$csv" | json_field seconds)
  astro=-
  if [[ $name == dense ]]; then
    astro=$(taskset -c 0 python3 bench/cutouts_fitsio.py astropy "$work/coadds" "$csv" | json_field seconds)
  fi
  python3 - "$name" "$n" "$native" "$lanczos" "$fitsio" "$repro" "$astro" "$native_sum" "$fitsio_sum" <<'PY'
import json, sys
name, n = sys.argv[1], int(sys.argv[2])
native, lanczos, fitsio, repro = map(float, sys.argv[3:7])
astro = None if sys.argv[7] == "-" else float(sys.argv[7])
native_sum, fitsio_sum = float(sys.argv[8]), float(sys.argv[9])
# native cuts the same pixels as cfitsio reads: the centre pixels must agree.
same = abs(native_sum - fitsio_sum) <= 1e-6 * max(1.0, abs(fitsio_sum))
print(json.dumps({"density": name, "targets": n, "native_s": round(native, 3), "lanczos3_s": round(lanczos, 3),
                  "fitsio_s": fitsio, "fitsio_reproject_s": repro, "astropy_s": astro,
                  "native_vs_fitsio": round(fitsio / native, 2), "lanczos3_vs_reproject": round(repro / lanczos, 2),
                  "native_vs_astropy": round(astro / native, 2) if astro else None,
                  "native_pixels_equal_fitsio": same}))
if not same:
    sys.exit(f"native and fitsio centre pixels differ: {native_sum} vs {fitsio_sum}")
PY
done
