#!/usr/bin/env python3
"""Python baseline for a columnar scan of sweep files.

Reads RA, DEC and TYPE from each FITS table with astropy.io.fits (memmap=True,
only those three columns are materialised) and counts the rows with
``DEC > 0`` and ``TYPE == 'REX'``.  TYPE is right-stripped before the
comparison so 4A ("REX ", DR8-era files) and 3A ("REX", DR10) columns behave
the same.  RA is read (copied out of the memmap) so the bytes touched match a
scan of the same three columns, but it takes no part in the predicate.

Prints one JSON line: {"rows", "matched", "seconds", "bytes", ...} where
``bytes`` is the total on-disk size of the input files and ``column_bytes``
the in-memory size of the three columns read.  ``--workers N`` scans files in
parallel (multiprocessing, one file per task).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from multiprocessing import Pool

import numpy as np
from astropy.io import fits


def scan_file(path: str):
    with fits.open(path, memmap=True) as hdul:
        hdu = next(h for h in hdul[1:] if isinstance(h, fits.BinTableHDU))
        names = {n.upper(): n for n in hdu.columns.names}
        data = hdu.data
        ra = np.array(data[names["RA"]])
        dec = np.array(data[names["DEC"]])
        typ = np.array(data[names["TYPE"]])
    if typ.dtype.kind == "S":
        typ = np.char.decode(typ, "ascii")
    typ = np.char.rstrip(typ)
    with np.errstate(invalid="ignore"):
        mask = (dec > 0) & (typ == "REX")
    return int(ra.shape[0]), int(np.count_nonzero(mask)), int(ra.nbytes + dec.nbytes + typ.nbytes)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="astropy+numpy scan baseline: count DEC>0 & TYPE=='REX'")
    p.add_argument("files", nargs="+")
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    if args.workers > 1 and len(args.files) > 1:
        with Pool(processes=args.workers) as pool:
            res = pool.map(scan_file, args.files, chunksize=1)
    else:
        res = [scan_file(f) for f in args.files]
    seconds = time.perf_counter() - t0

    out = {
        "rows": sum(r[0] for r in res),
        "matched": sum(r[1] for r in res),
        "seconds": seconds,
        "bytes": sum(os.path.getsize(f) for f in args.files),
        "column_bytes": sum(r[2] for r in res),
        "files": len(args.files),
        "workers": args.workers,
    }
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
