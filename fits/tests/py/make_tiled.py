#!/usr/bin/env python3
"""Writes tile-compressed test images with astropy (RICE_1 floats,
HCOMPRESS_1 integers), plus astropy's own decompression of each, for the
lenspipe-fits tiled-image tests.

Usage: make_tiled.py OUTDIR

For every case NAME it writes OUTDIR/NAME.fits (primary HDU + CompImageHDU)
and OUTDIR/NAME.f32: astropy's decompressed `.data` as little-endian float32,
row-major (FITS axis 2 major), and prints one line "NAME WIDTH HEIGHT".

Exit status: 0 written, 3 missing Python modules.
"""

import sys

try:
    import numpy as np
    from astropy.io import fits
except ImportError as e:  # pragma: no cover - environment problem
    print(f"make_tiled.py: missing Python module ({e}); run: pip install astropy numpy",
          file=sys.stderr)
    sys.exit(3)


def sky(rng, ny, nx, sources=6):
    """Noise in nanomaggy-like units with Gaussian sources."""
    img = rng.normal(0.0, 0.005, (ny, nx))
    yy, xx = np.mgrid[0:ny, 0:nx]
    for _ in range(sources):
        x0, y0 = rng.uniform(0, nx), rng.uniform(0, ny)
        sigma, flux = rng.uniform(1.0, 3.0), rng.uniform(0.5, 20.0)
        img += flux / (2 * np.pi * sigma**2) * np.exp(
            -((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))
    return img.astype(np.float32)


def cases(rng):
    base = sky(rng, 230, 250)
    base[10:40, 20:90] = 0.0          # exact zeros (no-data regions)
    base[150, 30:35] = np.nan         # NaN pixels
    base[0, 0] = 0.0
    yield "dither2_250x230", base, dict(quantize_method=2, dither_seed=1234)
    yield "dither1_250x230", base, dict(quantize_method=1, dither_seed=17)
    nd = np.where(np.isnan(base), 0.0, base).astype(np.float32)
    yield "nodither_250x230", nd, dict(quantize_method=-1)
    # Tile rows past ZDITHER0 + index = 10000 wrap the dither seed.
    yield "seedwrap_400x300", sky(rng, 300, 400, 10), dict(quantize_method=2, dither_seed=9995)
    # One tile of all zeros, one all NaN, one that cannot be quantised (gzip).
    odd = sky(rng, 200, 300)
    odd[0:100, 0:100] = 0.0
    odd[100:200, 0:100] = np.nan
    odd[0:100, 200:300] = (rng.normal(0, 1, (100, 100)) * 1e30).astype(np.float32)
    yield "special_tiles_300x200", odd, dict(quantize_method=2, dither_seed=5)
    # Wide tiles along x only, odd sizes, blocksize of a partial last block.
    yield "strip_tiles_137x61", sky(rng, 61, 137, 3), dict(
        quantize_method=2, dither_seed=42, tile_shape=(1, 137))
    # HCOMPRESS_1, lossless (scale 0): DR10's maskbits bricks. Sparse mask
    # bits with blobs, edge tiles of odd sizes; a single odd tile; signed
    # 32-bit values (within 2^23, so float32 holds them exactly).
    bits = np.where(rng.random((230, 250)) < 0.2, 1 << rng.integers(0, 14, (230, 250)), 0)
    bits[40:90, 60:170] |= 2
    bits[100:230, 0:30] |= 1 << 13
    yield "hcompress_maskbits_250x230", bits.astype(np.int16), dict(
        compression_type="HCOMPRESS_1")
    odd_mask = np.where(rng.random((23, 37)) < 0.5, 1 << rng.integers(0, 12, (23, 37)), 0)
    yield "hcompress_one_odd_tile_37x23", odd_mask.astype(np.int16), dict(
        compression_type="HCOMPRESS_1", tile_shape=(23, 37))
    signed = rng.integers(-(1 << 23), 1 << 23, (77, 131)).astype(np.int32)
    signed[::7, ::5] = 0
    yield "hcompress_signed_131x77", signed, dict(
        compression_type="HCOMPRESS_1", tile_shape=(20, 33))


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    out = sys.argv[1]
    rng = np.random.default_rng(20240611)
    for name, data, opts in cases(rng):
        opts.setdefault("tile_shape", (100, 100))
        compression = opts.pop("compression_type", "RICE_1")
        if compression == "RICE_1":
            opts["quantize_level"] = -1e-4
        hdu = fits.CompImageHDU(data, compression_type=compression, **opts)
        hdu.header["CTYPE1"] = "RA---TAN"
        hdu.header["CRVAL1"] = 150.0
        path = f"{out}/{name}.fits"
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
        with fits.open(path) as f:
            dec = np.asarray(f[1].data, dtype="<f4")
        dec.tofile(f"{out}/{name}.f32")
        print(name, data.shape[1], data.shape[0])


if __name__ == "__main__":
    main()
