#!/usr/bin/env python3
"""Python baseline: the request's negative-sampling filter, reproduced faithfully.

This is section 1 of the code review request we answer ("Negative Sampling
Filters", spark_negative_sampling.py lines 417-462), in the same logic and the
same order, run over Legacy Surveys sweep (or tractor) FITS files read with
astropy.io.fits (memmap=True; only RA, DEC, TYPE, MASKBITS, NOBS_G, NOBS_R,
NOBS_Z and FLUX_Z are touched).

Profiles
--------
request_v1  z_mag_limit 21.0 and the request's NaN defect kept: its
            ``mag_z_ok = np.isnan(mag_z) | (mag_z < limit)`` lets every row
            with non-positive or NaN FLUX_Z pass the faint cut.
paper_iv    z_mag_limit 20.0 (the z < 20 AB cut of the Paper IV abstract) and
            the NaN handling fixed (``--fix-nan``, on by default for this
            profile): non-finite or non-positive FLUX_Z is rejected and counted
            under ``mag_z_faint``.

TYPE strings
------------
The request tests ``np.isin(types_all, VALID_TYPES)``.  DR10 writes TYPE as
3A ("PSF"), DR8-era files as 4A ("PSF ").  astropy returns string columns as a
chararray that strips trailing blanks only on element access and on ``==``;
``np.isin`` works on the underlying padded values ('DEV ') and so matches
NOTHING on a 4A column (checked with astropy 8.0 / numpy 2.4 on the DR8
fixtures).  ``--types-strip`` (default on) therefore applies
``np.char.rstrip`` before ``np.isin``; on 3A files this changes nothing.
``--no-types-strip`` reproduces the naive comparison (every galaxy rejected
as ``not_valid_type`` on 4A files).

Output: one JSON document (stdout, or ``--out-json FILE``) with per-file and
total ``input_rows``, the request's ``skip_reasons``, ``kept`` and elapsed
seconds; ``--kept-out FILE`` writes a CSV of kept ``sweep_file,row_index``
(file basename, 0-based row).  ``--workers N`` processes files in parallel
(multiprocessing, one file per task) so timings can be compared with other
implementations at the same core count.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from multiprocessing import Pool

import numpy as np
from astropy.io import fits

# --- constants of the request (sampling_utils.py / spark_negative_sampling.py) ---
VALID_TYPES_N1 = {"SER", "DEV", "REX", "EXP"}
DEFAULT_EXCLUDE_MASKBITS = {1, 5, 6, 7, 11, 12, 13}
DECALS_DEC_MIN = -18.0
DECALS_DEC_MAX = 32.0
MIN_EXPOSURES = 3

COLUMNS = ("RA", "DEC", "TYPE", "MASKBITS", "NOBS_G", "NOBS_R", "NOBS_Z", "FLUX_Z")

SKIP_REASON_KEYS = (
    "invalid_coords",
    "outside_decals",
    "not_valid_type",
    "maskbit",
    "nobs_g_lt_3",
    "nobs_r_lt_3",
    "nobs_z_lt_3",
    "insufficient_exposures",
    "mag_z_faint",
)

PROFILES = {
    "request_v1": {"z_mag_limit": 21.0, "fix_nan": False},
    "paper_iv": {"z_mag_limit": 20.0, "fix_nan": True},
}


def _read_columns(path: str):
    """Open one FITS table with memmap and pull only the needed columns."""
    with fits.open(path, memmap=True) as hdul:
        hdu = None
        for h in hdul[1:]:
            if isinstance(h, fits.BinTableHDU):
                hdu = h
                break
        if hdu is None:
            raise ValueError(f"{path}: no binary table HDU")
        names = {n.upper(): n for n in hdu.columns.names}
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}")
        data = hdu.data
        cols = {}
        for c in COLUMNS:
            # np.array(...) copies out of the memmap so the file can close;
            # only these eight columns are read.
            cols[c] = np.array(data[names[c]])
        n = len(data)
    return n, cols


def process_file(path: str, params: dict) -> dict:
    t0 = time.perf_counter()
    n_rows, cols = _read_columns(path)

    ra_all = cols["RA"]
    dec_all = cols["DEC"]
    types_all = cols["TYPE"]
    if types_all.dtype.kind == "S":  # bytes (e.g. another reader) -> str
        types_all = np.char.decode(types_all, "ascii")
    if params["types_strip"]:
        types_all = np.char.rstrip(types_all)
    maskbits_all = cols["MASKBITS"]
    nobs_g_all = cols["NOBS_G"]
    nobs_r_all = cols["NOBS_R"]
    nobs_z_all = cols["NOBS_Z"]
    flux_z_all = cols["FLUX_Z"]
    z_mag_limit = params["z_mag_limit"]
    exclude_maskbits = params["exclude_maskbits"]

    skip_reasons = {}

    # ---- request section 1, same logic, same order ----------------------
    # 1. Valid coordinates
    valid_coords = np.isfinite(ra_all) & np.isfinite(dec_all)
    skip_reasons["invalid_coords"] = int(np.sum(~valid_coords))

    # 2. DECaLS footprint (strict inequalities, as in the request)
    with np.errstate(invalid="ignore"):
        in_decals = (dec_all > DECALS_DEC_MIN) & (dec_all < DECALS_DEC_MAX)
    skip_reasons["outside_decals"] = int(np.sum(valid_coords & ~in_decals))

    # 3. Valid galaxy types (N1 pool)
    valid_types = np.isin(types_all, list(VALID_TYPES_N1))
    skip_reasons["not_valid_type"] = int(np.sum(valid_coords & in_decals & ~valid_types))

    # 4. Maskbit exclusions (vectorized bitwise check)
    exclude_mask_combined = 0
    for bit in exclude_maskbits:
        exclude_mask_combined |= (1 << bit)
    maskbit_ok = (maskbits_all.astype(np.int64) & exclude_mask_combined) == 0
    skip_reasons["maskbit"] = int(np.sum(valid_coords & in_decals & valid_types & ~maskbit_ok))

    # 5. Minimum exposures per band
    nobs_g_ok = nobs_g_all >= MIN_EXPOSURES
    nobs_r_ok = nobs_r_all >= MIN_EXPOSURES
    nobs_z_ok = nobs_z_all >= MIN_EXPOSURES
    nobs_ok = nobs_g_ok & nobs_r_ok & nobs_z_ok

    pre_nobs_mask = valid_coords & in_decals & valid_types & maskbit_ok
    skip_reasons["nobs_g_lt_3"] = int(np.sum(pre_nobs_mask & ~nobs_g_ok))
    skip_reasons["nobs_r_lt_3"] = int(np.sum(pre_nobs_mask & ~nobs_r_ok))
    skip_reasons["nobs_z_lt_3"] = int(np.sum(pre_nobs_mask & ~nobs_z_ok))
    skip_reasons["insufficient_exposures"] = int(np.sum(pre_nobs_mask & ~nobs_ok))

    # 6. Z-band magnitude limit
    with np.errstate(divide="ignore", invalid="ignore"):
        mag_z_all = np.where(flux_z_all > 0, 22.5 - 2.5 * np.log10(flux_z_all), np.nan)
    if params["fix_nan"]:
        # Fixed: non-finite / non-positive flux_z has no magnitude -> rejected.
        with np.errstate(invalid="ignore"):
            mag_z_ok = np.isfinite(mag_z_all) & (mag_z_all < z_mag_limit)
    else:
        # The request's code: NaN magnitudes PASS the faint cut (defect kept).
        with np.errstate(invalid="ignore"):
            mag_z_ok = np.isnan(mag_z_all) | (mag_z_all < z_mag_limit)
    pre_mag = valid_coords & in_decals & valid_types & maskbit_ok & nobs_ok
    skip_reasons["mag_z_faint"] = int(np.sum(pre_mag & ~mag_z_ok))

    # Combined mask before spatial query
    pre_spatial_mask = valid_coords & in_decals & valid_types & maskbit_ok & nobs_ok & mag_z_ok
    # ----------------------------------------------------------------------

    no_mag = ~np.isfinite(mag_z_all)
    diagnostics = {
        # rows kept although FLUX_Z is NaN or <= 0 (only non-zero without --fix-nan)
        "kept_without_valid_mag_z": int(np.sum(pre_spatial_mask & no_mag)),
        # rows reaching the faint cut with NaN or <= 0 FLUX_Z
        "reaching_mag_cut_without_valid_mag_z": int(np.sum(pre_mag & no_mag)),
    }

    kept_idx = np.flatnonzero(pre_spatial_mask)
    return {
        "sweep_file": os.path.basename(path),
        "path": path,
        "input_rows": int(n_rows),
        "skip_reasons": {k: skip_reasons[k] for k in SKIP_REASON_KEYS},
        "kept": int(kept_idx.size),
        "diagnostics": diagnostics,
        "seconds": time.perf_counter() - t0,
        "_kept_idx": kept_idx if params["want_kept"] else None,
    }


def _worker(args):
    path, params = args
    return process_file(path, params)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", help="sweep / tractor FITS files")
    p.add_argument("--profile", choices=sorted(PROFILES), default="request_v1")
    p.add_argument("--z-mag-limit", type=float, default=None,
                   help="override the profile's z magnitude limit")
    nan = p.add_mutually_exclusive_group()
    nan.add_argument("--fix-nan", dest="fix_nan", action="store_true", default=None,
                     help="reject non-finite / non-positive FLUX_Z (default for paper_iv)")
    nan.add_argument("--no-fix-nan", dest="fix_nan", action="store_false",
                     help="keep the request's NaN defect (default for request_v1)")
    p.add_argument("--types-strip", dest="types_strip", action="store_true", default=True,
                   help="rstrip TYPE before np.isin (default; needed for 4A TYPE columns)")
    p.add_argument("--no-types-strip", dest="types_strip", action="store_false",
                   help="compare TYPE as read (drops every galaxy on 4A files)")
    p.add_argument("--exclude-maskbits", default=",".join(str(b) for b in sorted(DEFAULT_EXCLUDE_MASKBITS)),
                   help="comma-separated MASKBITS bit numbers to exclude (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.add_argument("--out-json", default=None, help="write the JSON here instead of stdout")
    p.add_argument("--kept-out", default=None, help="CSV of kept sweep_file,row_index")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    prof = PROFILES[args.profile]
    params = {
        "profile": args.profile,
        "z_mag_limit": prof["z_mag_limit"] if args.z_mag_limit is None else args.z_mag_limit,
        "fix_nan": prof["fix_nan"] if args.fix_nan is None else args.fix_nan,
        "types_strip": args.types_strip,
        "exclude_maskbits": sorted({int(b) for b in args.exclude_maskbits.split(",") if b.strip()}),
        "want_kept": args.kept_out is not None,
    }
    t0 = time.perf_counter()
    tasks = [(f, params) for f in args.files]
    if args.workers > 1 and len(tasks) > 1:
        with Pool(processes=args.workers) as pool:
            results = pool.map(_worker, tasks, chunksize=1)
    else:
        results = [_worker(t) for t in tasks]
    elapsed = time.perf_counter() - t0

    if args.kept_out:
        with open(args.kept_out, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["sweep_file", "row_index"])
            for r in results:
                for i in r["_kept_idx"]:
                    w.writerow([r["sweep_file"], int(i)])

    total_skip = {k: sum(r["skip_reasons"][k] for r in results) for k in SKIP_REASON_KEYS}
    total_diag = {k: sum(r["diagnostics"][k] for r in results) for k in results[0]["diagnostics"]}
    doc = {
        "tool": "bench/request_negative_sampling.py",
        "profile": args.profile,
        "params": {
            "z_mag_limit": params["z_mag_limit"],
            "fix_nan": params["fix_nan"],
            "types_strip": params["types_strip"],
            "valid_types": sorted(VALID_TYPES_N1),
            "exclude_maskbits": params["exclude_maskbits"],
            "dec_range_exclusive": [DECALS_DEC_MIN, DECALS_DEC_MAX],
            "min_exposures": MIN_EXPOSURES,
        },
        "workers": args.workers,
        "files": [{k: v for k, v in r.items() if not k.startswith("_")} for r in results],
        "total": {
            "files": len(results),
            "input_rows": sum(r["input_rows"] for r in results),
            "skip_reasons": total_skip,
            "kept": sum(r["kept"] for r in results),
            "diagnostics": total_diag,
        },
        "elapsed_seconds": elapsed,
    }
    text = json.dumps(doc, indent=2)
    if args.out_json:
        with open(args.out_json, "w") as fh:
            fh.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
