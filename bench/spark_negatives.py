#!/usr/bin/env python3
"""Peer benchmark: the request's negative-sampling filter on Spark (PySpark, local mode).

The code review request runs its negative sampling as a PySpark job. This
script runs the same filter (section 1 of the request, "Negative Sampling
Filters") on Spark in two ways, on the same sweep FITS files that
``lenspipe run negatives`` reads, and checks that every way keeps the same
rows:

(a) ``rdd``: the request's way. An RDD of sweep file paths, one file per
    partition; ``mapPartitions`` opens each file with astropy (memmap=True)
    and applies the filter with numpy. The filter is ``process_file`` of
    ``bench/request_negative_sampling.py``, imported (and shipped to the
    Python workers with ``addPyFile``), not copied. The driver collects the
    kept (sweep_file, row_index) and the request's funnel counts.

(b) ``dataframe``: the same rows converted to Parquet first (columns RA, DEC,
    TYPE, MASKBITS, NOBS_G, NOBS_R, NOBS_Z, FLUX_Z plus sweep_file and
    row_index; one Parquet file per sweep file), then filtered with Spark
    DataFrame expressions equivalent to the filter. The conversion is done
    before the Spark session starts and is NOT counted in (b)'s time (its
    seconds are reported separately). The timed (b) is one job: filter and
    collect the kept (sweep_file, row_index). The funnel counts (the first
    failing cut of every row, grouped) are a second job, timed on its own.

The Spark session (JVM start, SparkContext) is timed separately, so each
variant is reported both without and with it.

Equivalence of (b) with the filter, as ``paper_iv_reject_reason`` applies it:
RA and DEC finite; ``dec_min < DEC < dec_max`` (strict); TYPE with trailing
blanks/NULs stripped in the valid set; ``(MASKBITS & mask) == 0`` for the
excluded bits; NOBS_G, NOBS_R, NOBS_Z >= 3; ``22.5 - 2.5 log10(FLUX_Z) <
z_mag_limit`` computed in double precision, with NaN, infinite, zero or
negative FLUX_Z rejected under the paper_iv profile (under request_v1 they
pass, the request's defect). Spark orders NaN above every number (``NaN >
x`` is true), so NaN is tested explicitly rather than left to comparisons.

If ``--lenspipe-negatives DIR`` is given (the ``negatives`` folder that
``lenspipe run negatives`` wrote: Parquet with ``sweep_file`` and
``row_index``), the kept sets of (a) and (b) are compared with lenspipe's,
and with ``--lenspipe-run-json`` the funnel counts too (first failing cut;
run lenspipe with ``inputs.positives=null`` so that no row is removed as
near a known lens); the script exits 1 if any two differ. The result is one JSON document
(``--out-json`` or stdout).

    pip install pyspark      # Java 17 or later on PATH / JAVA_HOME
    python3 bench/spark_negatives.py --profile paper_iv --cores 2 \\
        --parquet-dir /tmp/pq --lenspipe-negatives runs/x/negatives FILE.fits...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import request_negative_sampling as req  # noqa: E402  (the request's filter)

FUNNEL_ORDER = ("invalid_coords", "outside_decals", "not_valid_type", "maskbit",
                "insufficient_exposures", "mag_z_faint")


# --------------------------------------------------------------------------
# Parquet conversion for (b): not timed as part of Spark's work.

def fits_to_parquet(path: str, out: str) -> int:
    """The filter's columns of one sweep file, plus sweep_file and row_index."""
    n, cols = req._read_columns(path)
    types = cols["TYPE"]
    if types.dtype.kind == "S":
        types = np.char.decode(types, "ascii")
    arrays = {c: pa.array(cols[c].astype(cols[c].dtype.newbyteorder("="), copy=False))
              for c in req.COLUMNS if c != "TYPE"}
    arrays["TYPE"] = pa.array(types.tolist(), pa.string())  # as read, blanks kept
    arrays["sweep_file"] = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n, dtype=np.int32)), pa.array([os.path.basename(path)], pa.string()))
    arrays["row_index"] = pa.array(np.arange(n, dtype=np.int64))
    table = pa.table({k: arrays[k] for k in (*req.COLUMNS, "sweep_file", "row_index")})
    tmp = out + ".tmp"
    pq.write_table(table, tmp, compression="snappy")
    os.replace(tmp, out)
    return n


def convert_all(files, parquet_dir: str):
    os.makedirs(parquet_dir, exist_ok=True)
    outs, converted = [], 0
    t0 = time.perf_counter()
    for f in files:
        out = os.path.join(parquet_dir, os.path.basename(f) + ".parquet")
        if not (os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(f)):
            fits_to_parquet(f, out)
            converted += 1
        outs.append(out)
    return outs, converted, time.perf_counter() - t0


# --------------------------------------------------------------------------
# Spark session

# Root at WARN: with PySpark, Spark prints a "Setting default log level" banner
# whenever the root level differs from WARN; setLogLevel("ERROR") follows the
# start. The start-up warnings that are expected here are silenced.
LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = error
logger.utils.name = org.apache.spark.util.Utils
logger.utils.level = error
"""


def start_spark(cores: int, driver_memory: str, local_dir: str):
    from pyspark.sql import SparkSession

    # Quiet logs: a log4j2.properties (errors only) in a private SPARK_CONF_DIR,
    # which spark-submit puts on the driver's class path.
    conf_dir = os.path.join(local_dir, "conf")
    os.makedirs(conf_dir, exist_ok=True)
    log_conf = os.path.join(conf_dir, "log4j2.properties")
    with open(log_conf, "w") as fh:
        fh.write(LOG4J2)
    os.environ["SPARK_CONF_DIR"] = conf_dir
    os.environ["SPARK_LOCAL_DIRS"] = local_dir  # scratch (shuffle) files
    java_opts = f"-Dlog4j2.configurationFile=file:{log_conf}"
    # The Python workers must use this interpreter (numpy, astropy).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("lenspipe-bench-negatives")
        .config("spark.driver.memory", driver_memory)
        .config("spark.driver.extraJavaOptions", java_opts)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", str(cores))
        .config("spark.default.parallelism", str(cores))
        .config("spark.sql.session.timeZone", "UTC")
    )
    t0 = time.perf_counter()
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark, time.perf_counter() - t0


# --------------------------------------------------------------------------
# (a) the request's way: RDD of paths, mapPartitions, astropy + numpy

def _filter_partition(paths, params):
    import request_negative_sampling as r  # on the worker, from addPyFile

    for p in paths:
        res = r.process_file(p, params)
        yield {
            "sweep_file": res["sweep_file"],
            "input_rows": res["input_rows"],
            "skip_reasons": res["skip_reasons"],
            "kept_idx": res["_kept_idx"].astype(np.int64).tolist(),
        }


def run_rdd(spark, files, params):
    sc = spark.sparkContext
    t0 = time.perf_counter()
    rdd = sc.parallelize(list(files), numSlices=len(files))  # one file per partition
    results = rdd.mapPartitions(lambda it: _filter_partition(it, params)).collect()
    seconds = time.perf_counter() - t0
    kept = {(r["sweep_file"], i) for r in results for i in r["kept_idx"]}
    skip = {k: sum(r["skip_reasons"][k] for r in results) for k in req.SKIP_REASON_KEYS}
    funnel = {k: skip[k] for k in FUNNEL_ORDER}  # first failing cut (nobs_*: per band, overlapping)
    return {
        "seconds": seconds,
        "input_rows": sum(r["input_rows"] for r in results),
        "kept": len(kept),
        "funnel": funnel,
        "skip_reasons": skip,
    }, kept


# --------------------------------------------------------------------------
# (b) DataFrame expressions over Parquet

def _conditions(params):
    from pyspark.sql import functions as F

    def finite(c):
        return c.isNotNull() & ~F.isnan(c) & (F.abs(c) < F.lit(float("inf")))

    ra, dec = F.col("RA").cast("double"), F.col("DEC").cast("double")
    mask = 0
    for b in params["exclude_maskbits"]:
        mask |= 1 << b
    flux = F.col("FLUX_Z").cast("double")
    typ = F.regexp_replace(F.col("TYPE"), "[ \\u0000]+$", "")
    mag = F.lit(22.5) - F.lit(2.5) * F.log10(flux)
    has_mag = finite(flux) & (flux > 0)
    mag_ok = has_mag & (mag < F.lit(float(params["z_mag_limit"])))
    if not params["fix_nan"]:  # request_v1: no magnitude passes the cut
        mag_ok = ~has_mag | (mag < F.lit(float(params["z_mag_limit"])))
    nobs = [F.col(c) >= F.lit(req.MIN_EXPOSURES) for c in ("NOBS_G", "NOBS_R", "NOBS_Z")]
    return [
        ("invalid_coords", finite(ra) & finite(dec)),
        ("outside_decals", (dec > F.lit(req.DECALS_DEC_MIN)) & (dec < F.lit(req.DECALS_DEC_MAX))),
        ("not_valid_type", typ.isin(sorted(req.VALID_TYPES_N1))),
        ("maskbit", (F.col("MASKBITS").cast("long").bitwiseAND(F.lit(mask)) == 0)),
        ("insufficient_exposures", nobs[0] & nobs[1] & nobs[2]),
        ("mag_z_faint", mag_ok),
    ]


def run_dataframe(spark, parquet_files, params):
    from pyspark.sql import functions as F

    conds = _conditions(params)
    # Filter: all cuts ANDed (NULL counts as failing: where() drops it).
    t0 = time.perf_counter()
    df = spark.read.parquet(*parquet_files)
    keep = conds[0][1]
    for _, c in conds[1:]:
        keep = keep & c
    rows = df.where(keep).select("sweep_file", "row_index").collect()
    seconds = time.perf_counter() - t0
    kept = {(r["sweep_file"], int(r["row_index"])) for r in rows}

    # Funnel: the first failing cut of every row, counted (a second job).
    t1 = time.perf_counter()
    reason = None
    for name, c in conds:
        step = F.when(~F.coalesce(c, F.lit(False)), F.lit(name))
        reason = step if reason is None else reason.when(~F.coalesce(c, F.lit(False)), F.lit(name))
    counts = (spark.read.parquet(*parquet_files)
              .select(reason.alias("reason"))
              .groupBy("reason").count().collect())
    funnel_seconds = time.perf_counter() - t1
    by = {r["reason"]: int(r["count"]) for r in counts}
    funnel = {k: by.get(k, 0) for k in FUNNEL_ORDER}
    return {
        "seconds": seconds,
        "funnel_seconds": funnel_seconds,
        "input_rows": sum(by.values()),
        "kept": len(kept),
        "kept_by_funnel_job": by.get(None, 0),
        "funnel": funnel,
    }, kept


# --------------------------------------------------------------------------

def read_lenspipe(folder: str):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "py"))
    from lenspipe_output import dataset

    t = dataset(folder).to_table(columns=["sweep_file", "row_index"])
    return set(zip(t.column("sweep_file").to_pylist(), t.column("row_index").to_pylist()))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", help="sweep FITS files")
    p.add_argument("--profile", choices=sorted(req.PROFILES), default="paper_iv")
    p.add_argument("--cores", type=int, default=os.cpu_count(),
                   help="local[N] (default: all cores, as lenspipe uses)")
    p.add_argument("--driver-memory", default="4g",
                   help="spark.driver.memory; in local mode the executors live in the driver JVM")
    p.add_argument("--parquet-dir", required=True,
                   help="where the Parquet copies for (b) are made (kept and reused)")
    p.add_argument("--local-dir", default=None, help="parent folder of the scratch folder given to Spark as SPARK_LOCAL_DIRS (default: the system temporary folder)")
    p.add_argument("--lenspipe-negatives", default=None,
                   help="the negatives/ folder lenspipe wrote, to compare kept rows with")
    p.add_argument("--lenspipe-run-json", default=None,
                   help="lenspipe's run.json, to compare its negatives funnel with (a)'s and (b)'s")
    p.add_argument("--variants", default="rdd,dataframe", help="which of rdd,dataframe to run")
    p.add_argument("--out-json", default=None)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    prof = req.PROFILES[args.profile]
    params = {
        "profile": args.profile,
        "z_mag_limit": prof["z_mag_limit"],
        "fix_nan": prof["fix_nan"],
        "types_strip": True,
        "exclude_maskbits": sorted(req.DEFAULT_EXCLUDE_MASKBITS),
        "want_kept": True,
    }
    files = [os.path.abspath(f) for f in args.files]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    doc = {"tool": "bench/spark_negatives.py", "profile": args.profile, "params": params,
           "cores": args.cores, "driver_memory": args.driver_memory, "files": len(files)}

    if "dataframe" in variants:
        pq_files, converted, conv_s = convert_all(files, args.parquet_dir)
        doc["parquet_conversion"] = {"files_converted": converted, "seconds": conv_s,
                                     "counted": False,
                                     "bytes": sum(os.path.getsize(f) for f in pq_files)}
        # warm the page cache for the Parquet copies too
        for f in pq_files:
            with open(f, "rb") as fh:
                while fh.read(1 << 24):
                    pass

    import pyspark

    doc["pyspark_version"] = pyspark.__version__
    with tempfile.TemporaryDirectory(prefix="spark-bench-", dir=args.local_dir) as local_dir:
        spark, session_s = start_spark(args.cores, args.driver_memory, local_dir)
        doc["session_start_seconds"] = session_s
        doc["spark_version"] = spark.version
        spark.sparkContext.addPyFile(os.path.join(HERE, "request_negative_sampling.py"))
        kept = {}
        try:
            if "rdd" in variants:
                doc["rdd"], kept["spark_rdd"] = run_rdd(spark, files, params)
            if "dataframe" in variants:
                doc["dataframe"], kept["spark_dataframe"] = run_dataframe(spark, pq_files, params)
        finally:
            spark.stop()

    ok = True
    if args.lenspipe_negatives:
        kept = {"lenspipe": read_lenspipe(args.lenspipe_negatives), **kept}
    names = list(kept)
    doc["kept"] = {n: len(kept[n]) for n in names}
    comparisons = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            same = kept[a] == kept[b]
            comparisons[f"{a} == {b}"] = same
            ok &= same
            if not same:
                only_a, only_b = sorted(kept[a] - kept[b]), sorted(kept[b] - kept[a])
                print(f"DIFFER {a} vs {b}: {len(only_a)} only in {a} (e.g. {only_a[:3]}), "
                      f"{len(only_b)} only in {b} (e.g. {only_b[:3]})", file=sys.stderr)
    funnels = {}
    if args.lenspipe_run_json:
        with open(args.lenspipe_run_json) as fh:
            rejected = json.load(fh)["stages"]["negatives"]["rejected"]
        funnels["lenspipe"] = {k: int(rejected.get(k, 0)) for k in FUNNEL_ORDER}
    for v, key in (("rdd", "spark_rdd"), ("dataframe", "spark_dataframe")):
        if v in doc:
            funnels[key] = doc[v]["funnel"]
    fnames = list(funnels)
    for i, a in enumerate(fnames):
        for b in fnames[i + 1:]:
            same = funnels[a] == funnels[b]
            comparisons[f"funnel {a} == {b}"] = same
            ok &= same
    doc["identical"] = comparisons
    doc["ok"] = ok

    text = json.dumps(doc, indent=2)
    if args.out_json:
        with open(args.out_json, "w") as fh:
            fh.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    for k, v in comparisons.items():
        print(f"{k}: {'identical' if v else 'DIFFERENT'}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
