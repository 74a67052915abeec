#!/usr/bin/env python3
"""Writes test coadd bricks in the DR10 layout with astropy.

  ROOT/coadd/<AAA>/<brick>/legacysurvey-<brick>-image-<band>.fits.fz
  ROOT/survey-bricks.fits.gz

Each image: empty primary HDU, then a RICE_1 CompImageHDU (tile_shape
(100, 100), quantize_level -1e-4, SUBTRACTIVE_DITHER_2) with a TAN WCS centred
on the brick (CRPIX (size+1)/2, CD 0.262"/px, east left) holding noise and
Gaussian sources (flux in nanomaggies, sigma in pixels).

With --invvar, also ROOT/coadd/<AAA>/<brick>/legacysurvey-<brick>-invvar-<band>.fits.fz
the same way but with legacypipe's invvar compression (RICE_1, quantize_level
16): 1/sigma^2 of the noise, with a gradient across the brick (depth varies),
and zero (no data) in the bands of --zero-invvar-band.

With --maskbits, also ROOT/coadd/<AAA>/<brick>/legacysurvey-<brick>-maskbits.fits.fz
with legacypipe's maskbits compression (HCOMPRESS_1, 100x100 tiles, int16):
sparse bit 8 (WISEM1) noise, and bit 1 (BRIGHT) within 8 pixels of every
source that has "masked": true.

Usage:
  make_bricks.py ROOT --bricks JSON [--size N] [--sources JSON] [--bands grz]
                 [--zero-band z] [--missing-band r] [--dump] [--seed S]
                 [--invvar] [--zero-invvar-band z] [--maskbits]

--bricks: [{"name": "1500p020", "ra": 150.0, "dec": 2.0, "unique_deg": 0.02}, ...]
  (unique_deg: side of the unique area RA1..RA2 x DEC1..DEC2 in degrees
  along the sky; default 0.25 when size is 3600, else 0.8 of the image)
--sources: [{"ra": .., "dec": .., "flux": .., "sigma": .., "masked": false}, ...]
--dump: also write astropy's decompressed pixels as <file>.f32 (float32 LE)
Prints JSON: for each brick and source, astropy's 0-based pixel position.
"""

import argparse
import gzip
import json
import os
import sys

try:
    import numpy as np
    from astropy.io import fits
    from astropy.wcs import WCS
except ImportError as e:  # pragma: no cover - environment problem
    print(f"make_bricks.py: missing Python module ({e}); pip install astropy numpy",
          file=sys.stderr)
    sys.exit(3)

PIXSCALE = 0.262


def brick_header(ra, dec, size):
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRVAL1"], h["CRVAL2"] = ra, dec
    h["CRPIX1"] = h["CRPIX2"] = (size + 1) / 2.0
    h["CD1_1"], h["CD1_2"] = -PIXSCALE / 3600, 0.0
    h["CD2_1"], h["CD2_2"] = 0.0, PIXSCALE / 3600
    h["BUNIT"] = "nanomaggy"
    return h


def image(wcs, size, sources, rng):
    img = rng.normal(0.0, 0.002, (size, size))
    for s in sources:
        x0, y0 = wcs.all_world2pix([[s["ra"], s["dec"]]], 0)[0]
        sig = s.get("sigma", 1.5)
        r = int(6 * sig) + 2
        if not (-r < x0 < size + r and -r < y0 < size + r):
            continue
        xs = slice(max(int(x0) - r, 0), min(int(x0) + r + 1, size))
        ys = slice(max(int(y0) - r, 0), min(int(y0) + r + 1, size))
        yy, xx = np.mgrid[ys, xs]
        img[ys, xs] += s["flux"] / (2 * np.pi * sig**2) * np.exp(
            -((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sig**2))
    return img.astype(np.float32)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("--bricks", required=True)
    p.add_argument("--size", type=int, default=400)
    p.add_argument("--sources", default="[]")
    p.add_argument("--bands", default="grz")
    p.add_argument("--zero-band", default="")
    p.add_argument("--missing-band", default="")
    p.add_argument("--dump", action="store_true")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--invvar", action="store_true")
    p.add_argument("--zero-invvar-band", default="")
    p.add_argument("--maskbits", action="store_true")
    a = p.parse_args()
    bricks, sources = json.loads(a.bricks), json.loads(a.sources)
    rng = np.random.default_rng(a.seed)
    report, rows = {}, []
    for b in bricks:
        name, ra, dec = b["name"], b["ra"], b["dec"]
        unique = b.get("unique_deg", 0.25 if a.size == 3600 else 0.8 * a.size * PIXSCALE / 3600)
        dra = unique / 2 / np.cos(np.radians(dec))
        rows.append((name, ra, dec, ra - dra, ra + dra, dec - unique / 2, dec + unique / 2))
        header = brick_header(ra, dec, a.size)
        wcs = WCS(header)
        d = os.path.join(a.root, "coadd", name[:3], name)
        os.makedirs(d, exist_ok=True)
        for i, band in enumerate(a.bands):
            if band in a.missing_band:
                continue
            data = image(wcs, a.size, sources, rng)
            if band in a.zero_band:
                data[:] = 0.0
            hdu = fits.CompImageHDU(data, header=header, compression_type="RICE_1",
                                    tile_shape=(100, 100), quantize_level=-1e-4,
                                    quantize_method=2, dither_seed=1 + (a.seed * 7 + i) % 10000)
            path = os.path.join(d, f"legacysurvey-{name}-image-{band}.fits.fz")
            fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
            if a.dump:
                with fits.open(path) as f:
                    np.asarray(f[1].data, dtype="<f4").tofile(path + ".f32")
            if a.invvar:
                ramp = np.linspace(0.6, 1.4, a.size, dtype=np.float64)[None, :]
                jitter = 1.0 + 0.02 * rng.standard_normal((a.size, a.size))
                iv = (jitter * ramp / 0.002**2).astype(np.float32)
                if band in a.zero_invvar_band:
                    iv[:] = 0.0
                hdu = fits.CompImageHDU(iv, header=header, compression_type="RICE_1",
                                        tile_shape=(100, 100), quantize_level=16,
                                        quantize_method=2,
                                        dither_seed=1 + (a.seed * 11 + i) % 10000)
                path = os.path.join(d, f"legacysurvey-{name}-invvar-{band}.fits.fz")
                fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
                if a.dump:
                    with fits.open(path) as f:
                        np.asarray(f[1].data, dtype="<f4").tofile(path + ".f32")
        if a.maskbits:
            mask = np.where(rng.random((a.size, a.size)) < 0.01, 1 << 8, 0)
            yy, xx = np.mgrid[0:a.size, 0:a.size]
            for src in sources:
                if src.get("masked"):
                    x0, y0 = wcs.all_world2pix([[src["ra"], src["dec"]]], 0)[0]
                    mask[(xx - x0) ** 2 + (yy - y0) ** 2 <= 8 ** 2] |= 1 << 1
            hdu = fits.CompImageHDU(mask.astype(np.int16), header=header,
                                    compression_type="HCOMPRESS_1", tile_shape=(100, 100))
            path = os.path.join(d, f"legacysurvey-{name}-maskbits.fits.fz")
            fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
        report[name] = [[float(v) for v in wcs.all_world2pix([[s["ra"], s["dec"]]], 0)[0]]
                        for s in sources]
    cols = [fits.Column(name="BRICKNAME", format="8A", array=[r[0] for r in rows])]
    for j, c in enumerate(["RA", "DEC", "RA1", "RA2", "DEC1", "DEC2"]):
        cols.append(fits.Column(name=c, format="D", array=[r[j + 1] for r in rows]))
    table = fits.BinTableHDU.from_columns(cols)
    plain = os.path.join(a.root, "survey-bricks.fits")
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(plain, overwrite=True)
    with open(plain, "rb") as src, gzip.open(plain + ".gz", "wb") as dst:
        dst.write(src.read())
    os.remove(plain)
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
