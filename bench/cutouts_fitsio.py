"""Baselines for bench/cutouts_bricks.sh, one process, targets grouped by
brick, timed after the imports:

  fitsio     cfitsio (via fitsio) reads the 101 x 101 stamp of each band
             around the nearest pixel, decompressing only the tiles it
             touches (lenspipe's `native`).
  reproject  the same read with a 6-pixel margin, then reproject_interp
             (bicubic) onto the 101 x 101 TAN grid centred on the target
             (lenspipe's `lanczos3` grid).
  astropy    each band decompressed whole once per brick, then Cutout2D.

    cutouts_fitsio.py fitsio|reproject|astropy ROOT TARGETS.csv
"""
import csv
import json
import sys
import time
from collections import defaultdict

import numpy as np
import fitsio
from astropy.io import fits
from astropy.wcs import WCS

mode, root, targets = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "reproject":
    from reproject import reproject_interp
if mode == "astropy":
    from astropy.coordinates import SkyCoord
    from astropy.nddata import Cutout2D
    import astropy.units as u

SIZE, HALF, MARGIN, PIXSCALE = 101, 50, 6, 0.262
by_brick = defaultdict(list)
with open(targets) as f:
    for row in csv.DictReader(f):
        by_brick[row["brickname"]].append((float(row["ra"]), float(row["dec"])))


def path(brick, band):
    return f"{root}/coadd/{brick[:3]}/{brick}/legacysurvey-{brick}-image-{band}.fits.fz"


def out_header(ra, dec):
    h = fits.Header()
    h["NAXIS"], h["NAXIS1"], h["NAXIS2"] = 2, SIZE, SIZE
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRVAL1"], h["CRVAL2"] = ra, dec
    h["CRPIX1"] = h["CRPIX2"] = (SIZE + 1) / 2.0
    h["CD1_1"], h["CD1_2"], h["CD2_1"], h["CD2_2"] = -PIXSCALE / 3600, 0.0, 0.0, PIXSCALE / 3600
    return h


def stamp(img, w, h, x0, y0, size):
    """Pixels [y0, y0+size) x [x0, x0+size), zero off the image."""
    out = np.zeros((size, size), np.float32)
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + size, w), min(y0 + size, h)
    if xa < xb and ya < yb:
        out[ya - y0:yb - y0, xa - x0:xb - x0] = img[ya:yb, xa:xb]
    return out


start = time.perf_counter()
n, checksum = 0, 0.0
for brick, positions in sorted(by_brick.items()):
    radec = np.array(positions)
    order = np.lexsort((radec[:, 0], radec[:, 1]))
    planes = []
    for band in "grz":
        if mode == "astropy":
            with fits.open(path(brick, band)) as hdus:
                planes.append((hdus[1].data, WCS(hdus[1].header)))
        else:
            f = fitsio.FITS(path(brick, band))
            hdr = f[1].read_header()
            wcs = WCS(fits.Header({k: hdr[k] for k in ("CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CD1_1", "CD1_2", "CD2_1", "CD2_2")}))
            w, h = hdr["ZNAXIS1"], hdr["ZNAXIS2"]
            xy = wcs.all_world2pix(radec, 0)
            planes.append((f[1], wcs, w, h, xy))
    for i in order:
        ra, dec = positions[i]
        cut = []
        if mode == "astropy":
            pos = SkyCoord(ra * u.deg, dec * u.deg)
            cut = [Cutout2D(d, pos, (SIZE, SIZE), wcs=wcs, mode="partial", fill_value=0.0).data for d, wcs in planes]
        else:
            target = WCS(out_header(ra, dec)) if mode == "reproject" else None
            for hdu, wcs, w, h, xy in planes:
                cx, cy = int(np.round(xy[i, 0])), int(np.round(xy[i, 1]))
                m = MARGIN if mode == "reproject" else 0
                x0, y0, size = cx - HALF - m, cy - HALF - m, SIZE + 2 * m
                xa, ya = max(x0, 0), max(y0, 0)
                xb, yb = min(x0 + size, w), min(y0 + size, h)
                part = hdu[ya:yb, xa:xb]
                img = stamp(part, xb - xa, yb - ya, x0 - xa, y0 - ya, size)
                if mode == "reproject":
                    src = wcs.deepcopy()
                    src.wcs.crpix = [wcs.wcs.crpix[0] - x0, wcs.wcs.crpix[1] - y0]
                    img, _ = reproject_interp((img, src), target, shape_out=(SIZE, SIZE), order="bicubic")
                cut.append(img)
        checksum += float(cut[0][HALF, HALF])
        n += 1
seconds = time.perf_counter() - start
print(json.dumps({"tool": mode, "cutouts": n, "seconds": round(seconds, 3), "per_s": round(n / seconds, 1), "checksum": checksum}))
