"""Baseline for the bricks benchmark: astropy Cutout2D on the same
compressed coadd bricks, targets grouped by brick, one process. Each brick
image is opened and decompressed once (hdu.data), then each target is a
Cutout2D around its position (no resampling, as `native`).

    cutouts_astropy.py ROOT TARGETS.csv
"""
import csv
import json
import sys
import time
from collections import defaultdict

from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS
import astropy.units as u

root, targets = sys.argv[1], sys.argv[2]
by_brick = defaultdict(list)
with open(targets) as f:
    for row in csv.DictReader(f):
        by_brick[row["brickname"]].append((float(row["ra"]), float(row["dec"])))
start = time.perf_counter()
n, checksum = 0, 0.0
for brick, positions in sorted(by_brick.items()):
    planes = []
    for band in "grz":
        with fits.open(f"{root}/coadd/{brick[:3]}/{brick}/legacysurvey-{brick}-image-{band}.fits.fz") as h:
            planes.append((h[1].data, WCS(h[1].header)))
    for ra, dec in positions:
        pos = SkyCoord(ra * u.deg, dec * u.deg)
        cut = [Cutout2D(data, pos, (101, 101), wcs=wcs, mode="partial", fill_value=0.0).data for data, wcs in planes]
        checksum += float(cut[0][50, 50])
        n += 1
seconds = time.perf_counter() - start
print(json.dumps({"tool": "astropy Cutout2D", "cutouts": n, "seconds": round(seconds, 3), "per_s": round(n / seconds, 1)}))
