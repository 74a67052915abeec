#!/usr/bin/env bash
# Peer benchmark: the negatives stage (embedded) against Spark in local mode
# running the request's negative-sampling filter, same files, same core count,
# one run; lenspipe's kept rows and both Spark variants' must be identical.
#   bash bench/spark.sh [FILES] [ROWS_PER_FILE]   (defaults: 4 x 1,000,000)
# Spark variants (bench/spark_negatives.py):
#   (a) the request's way: RDD of sweep paths, mapPartitions, astropy (memmap)
#       + the request's numpy filter (imported from request_negative_sampling.py);
#   (b) DataFrame expressions over a Parquet copy of the filter's columns
#       (the conversion is made once, before timing, and is not counted).
# Needs: pip install pyspark (see bench/requirements.txt), Java 17+.
# Environment: LENSPIPE_BIN (default: built here, $CARGO_TARGET_DIR/release/lenspipe),
# CARGO_TARGET_DIR (default ./target), BENCH_DIR (default
# /tmp/lenspipe-bench), SPARK_DRIVER_MEMORY (default 4g), PYTHON (python3).
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-4}
rows=${2:-1000000}
target=${CARGO_TARGET_DIR:-$PWD/target}
if [[ -n ${LENSPIPE_BIN:-} ]]; then
  lenspipe=$LENSPIPE_BIN; build="LENSPIPE_BIN"
else
  cargo build -q --release --workspace --bins
  lenspipe=$target/release/lenspipe; build=release
fi
echo "lenspipe binary: $lenspipe ($build build)" >&2
python=${PYTHON:-python3}
work=${BENCH_DIR:-/tmp/lenspipe-bench}
cores=$(nproc)   # lenspipe (DataFusion) uses every core; Spark gets local[$cores]
memory=${SPARK_DRIVER_MEMORY:-4g}
data=$work/scan-$files-$rows
mkdir -p "$work"
[[ -d $data ]] || "$lenspipe" synth --out "$data" --files "$files" --rows-per-file "$rows" --seed 1 >&2
cat "$data"/*.fits > /dev/null

out=$work/spark-lenspipe-run
rm -rf "$out"
s=$EPOCHREALTIME
"$lenspipe" run negatives --config paper_iv --set "inputs.sweeps=$data/" --set "output=$out" \
  --set inputs.positives=null > /dev/null
t_ours=$(echo "$EPOCHREALTIME - $s" | bc -l)

json=$work/spark.json
if ! "$python" bench/spark_negatives.py --profile paper_iv --cores "$cores" --driver-memory "$memory" \
    --parquet-dir "$work/parquet-$files-$rows" --lenspipe-negatives "$out/negatives" \
    --lenspipe-run-json "$out/run.json" \
    --out-json "$json" "$data"/*.fits; then
  echo "FAILED: the kept rows differ (or Spark failed); see $json" >&2
  exit 1
fi

"$python" - "$json" "$t_ours" "$cores" "$build" "$files" "$rows" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ours, cores, build, files, rows = float(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
s = d["session_start_seconds"]
a, b, f = d["rdd"]["seconds"], d["dataframe"]["seconds"], d["dataframe"]["funnel_seconds"]
conv = d["parquet_conversion"]
conv_note = (f"{conv['seconds']:.2f} s for {conv['files_converted']} files" if conv["files_converted"]
             else "copies made by an earlier run")
k = d["kept"]
print(f"kept: lenspipe {k['lenspipe']:,}, Spark (a) {k['spark_rdd']:,}, Spark (b) {k['spark_dataframe']:,}; "
      f"identical: {all(d['identical'].values())} (funnel counts of all three too)")
print(f"Spark {d['spark_version']}, local[{d['cores']}], driver memory {d['driver_memory']}; "
      f"{files} x {rows:,} rows; lenspipe {build} build")
print()
print("| run | seconds | Spark / lenspipe |")
print("|---|---|---|")
print(f"| `lenspipe run negatives` (embedded, {cores} cores; whole process: start-up, scan, "
      f"classify, N2 tags, Parquet + run.json) | {ours:.2f} | 1.00 |")
print(f"| Spark session start alone (JVM + SparkContext) | {s:.2f} | |")
print(f"| Spark (a) RDD of paths, `mapPartitions`, astropy memmap + request numpy filter; "
      f"collect kept + funnel, **JVM start excluded** | {a:.2f} | {a / ours:.2f} |")
print(f"| Spark (a), **JVM start included** | {a + s:.2f} | {(a + s) / ours:.2f} |")
print(f"| Spark (b) DataFrame filter over Parquet, collect kept, **JVM start excluded** "
      f"(Parquet conversion not counted: {conv_note}) | {b:.2f} | {b / ours:.2f} |")
print(f"| Spark (b), **JVM start included** | {b + s:.2f} | {(b + s) / ours:.2f} |")
print(f"| Spark (b) funnel counts, a second job (not in the (b) rows above) | {f:.2f} | |")
PY
