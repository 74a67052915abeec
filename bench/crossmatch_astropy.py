#!/usr/bin/env python3
"""Python baseline: nearest-neighbour crossmatch of known lenses to sweep rows.

Loads the lens catalog (CSV; columns ``RA [deg]`` / ``DEC [deg]`` by default,
as in lenscat) and RA/DEC of every row of the given sweep FITS files
(astropy.io.fits, memmap=True, only RA and DEC read), then runs
``astropy.coordinates.match_coordinates_sky`` (KD-tree nearest neighbour;
the function behind ``SkyCoord.match_to_catalog_sky``) for
each lens against all sweep rows.  A lens is matched when its nearest sweep
row lies within ``--radius-arcsec`` (default 1.5").

``--out FILE`` writes one CSV row per lens: lens_index, name (if the CSV has a
``name`` column), lens_ra, lens_dec, matched, sweep_file, row_index,
sep_arcsec (the last three empty when the nearest row is beyond the radius)
and nearest_sep_arcsec (always filled when there is at least one sweep row).
Lenses with non-finite coordinates are reported unmatched.

Timings go to stdout as JSON (and to ``--timings-json FILE``): load_seconds
(reading the lens CSV and the sweep columns and building SkyCoord objects),
match_seconds (match_coordinates_sky, KD-tree build included) and
total_seconds.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord, match_coordinates_sky
from astropy.io import fits

# astropy builds its KD-tree with scipy; import it here so the import is not
# counted in match_seconds (and a missing scipy fails before any work).
import scipy.spatial  # noqa: F401


def read_lenses(path: str, ra_col: str, dec_col: str, name_col: str):
    ras, decs, names = [], [], []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if ra_col not in reader.fieldnames or dec_col not in reader.fieldnames:
            raise SystemExit(f"{path}: columns {ra_col!r}/{dec_col!r} not found in {reader.fieldnames}")
        has_name = name_col in reader.fieldnames
        for row in reader:
            ras.append(_to_float(row[ra_col]))
            decs.append(_to_float(row[dec_col]))
            names.append(row[name_col] if has_name else None)
    return np.array(ras, float), np.array(decs, float), (names if has_name else None)


def _to_float(s: str) -> float:
    try:
        return float(s)
    except (TypeError, ValueError):
        return math.nan


def read_sweeps(paths):
    ra_parts, dec_parts, file_idx, row_idx = [], [], [], []
    for k, path in enumerate(paths):
        with fits.open(path, memmap=True) as hdul:
            hdu = next(h for h in hdul[1:] if isinstance(h, fits.BinTableHDU))
            names = {n.upper(): n for n in hdu.columns.names}
            ra = np.array(hdu.data[names["RA"]], dtype=np.float64)
            dec = np.array(hdu.data[names["DEC"]], dtype=np.float64)
        ok = np.isfinite(ra) & np.isfinite(dec)
        rows = np.flatnonzero(ok)
        ra_parts.append(ra[ok])
        dec_parts.append(dec[ok])
        row_idx.append(rows)
        file_idx.append(np.full(rows.size, k, dtype=np.int32))
    if not ra_parts:
        return (np.empty(0), np.empty(0), np.empty(0, np.int32), np.empty(0, np.int64))
    return (np.concatenate(ra_parts), np.concatenate(dec_parts),
            np.concatenate(file_idx), np.concatenate(row_idx))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="astropy match_coordinates_sky crossmatch baseline")
    p.add_argument("--lenses", required=True, help="lens catalog CSV")
    p.add_argument("--sweeps", nargs="+", required=True, help="sweep FITS files")
    p.add_argument("--radius-arcsec", type=float, default=1.5)
    p.add_argument("--ra-col", default="RA [deg]")
    p.add_argument("--dec-col", default="DEC [deg]")
    p.add_argument("--name-col", default="name")
    p.add_argument("--out", default=None, help="per-lens match CSV")
    p.add_argument("--timings-json", default=None, help="also write the timings JSON here")
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    lra, ldec, lnames = read_lenses(args.lenses, args.ra_col, args.dec_col, args.name_col)
    sra, sdec, sfile, srow = read_sweeps(args.sweeps)
    lens_ok = np.isfinite(lra) & np.isfinite(ldec)
    lens_coords = SkyCoord(ra=lra[lens_ok] * u.deg, dec=ldec[lens_ok] * u.deg, frame="icrs")
    sweep_coords = SkyCoord(ra=sra * u.deg, dec=sdec * u.deg, frame="icrs")
    t1 = time.perf_counter()

    n_lens = lra.size
    nearest = np.full(n_lens, -1, dtype=np.int64)
    sep_arcsec = np.full(n_lens, np.nan)
    if len(sweep_coords) > 0 and len(lens_coords) > 0:
        idx, sep2d, _ = match_coordinates_sky(lens_coords, sweep_coords, nthneighbor=1)
        nearest[lens_ok] = idx
        sep_arcsec[lens_ok] = sep2d.to_value(u.arcsec)
    t2 = time.perf_counter()

    with np.errstate(invalid="ignore"):
        matched = (nearest >= 0) & (sep_arcsec <= args.radius_arcsec)

    if args.out:
        base = [os.path.basename(s) for s in args.sweeps]
        with open(args.out, "w", newline="") as fh:
            w = csv.writer(fh)
            header = ["lens_index"] + (["name"] if lnames is not None else []) + [
                "lens_ra", "lens_dec", "matched", "sweep_file", "row_index", "sep_arcsec",
                "nearest_sep_arcsec"]
            w.writerow(header)
            for i in range(n_lens):
                rec = [i] + ([lnames[i]] if lnames is not None else []) + [repr(float(lra[i])), repr(float(ldec[i]))]
                near = "" if nearest[i] < 0 else f"{sep_arcsec[i]:.6f}"
                if matched[i]:
                    j = nearest[i]
                    rec += ["true", base[sfile[j]], int(srow[j]), f"{sep_arcsec[i]:.6f}", near]
                else:
                    rec += ["false", "", "", "", near]
                w.writerow(rec)
    t3 = time.perf_counter()

    timings = {
        "n_lenses": int(n_lens),
        "n_lenses_invalid_coords": int(np.count_nonzero(~lens_ok)),
        "n_sweep_files": len(args.sweeps),
        "n_sweep_rows": int(sra.size),
        "radius_arcsec": args.radius_arcsec,
        "n_matched": int(np.count_nonzero(matched)),
        "load_seconds": t1 - t0,
        "match_seconds": t2 - t1,
        "write_seconds": t3 - t2,
        "total_seconds": t3 - t0,
    }
    text = json.dumps(timings)
    sys.stdout.write(text + "\n")
    if args.timings_json:
        with open(args.timings_json, "w") as fh:
            fh.write(json.dumps(timings, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
