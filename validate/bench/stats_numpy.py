#!/usr/bin/env python3
"""Vectorised numpy version of lenspipe-validate's per-cutout statistics, for
a throughput comparison with `cargo run --release --example bench_stats`.

Same quantities: per band annulus (40 <= r < 50 px) median and 1.4826*MAD,
zero fraction, peak, aperture (r <= 5 px) flux; the distance of the peak of
the 3x3 box-smoothed r+z image within 25 px of the centre; a 64-bit content
hash (a vectorised multiply-xor fold, not bit-identical to the Rust hash).

Usage: python3 stats_numpy.py [n_cutouts] [batch]
"""
import sys
import time

import numpy as np


def make_pool(n, rng, size=101):
    """Sky noise plus a Gaussian blob, like lenspipe_validate::synth."""
    noise = np.array([0.004, 0.006, 0.012], np.float32)[None, :, None, None]
    img = rng.standard_normal((n, 3, size, size), dtype=np.float32) * noise
    yy, xx = np.mgrid[0:size, 0:size]
    blob = np.exp(-0.5 * ((yy - 50) ** 2 + (xx - 50) ** 2) / 2.5**2).astype(np.float32)
    amp = (0.3 * (0.5 + 1.5 * rng.random(n))).astype(np.float32)
    colour = np.array([0.45, 1.0, 1.6], np.float32)
    img += amp[:, None, None, None] * colour[None, :, None, None] * blob[None, None]
    return img


def geometry(size=101, inner=40.0, outer=50.0, ap=5.0, search=25.0):
    c = (size - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size]
    r2 = (yy - c) ** 2 + (xx - c) ** 2
    ann = ((r2 >= inner**2) & (r2 < outer**2)).ravel()
    aper = (r2 <= ap**2).ravel()
    srch = (r2 <= search**2).ravel()
    return c, ann, aper, srch, yy.ravel(), xx.ravel()


def stats(batch, geo):
    """batch: (B, 3, H, W) float32 -> dict of (B,) or (B, 3) arrays."""
    c, ann, aper, srch, yy, xx = geo
    b, nb, h, w = batch.shape
    flat = batch.reshape(b, nb, h * w)
    finite = np.isfinite(flat)
    clean = np.where(finite, flat, np.nan)
    a = clean[:, :, ann]
    med = np.nanmedian(a, axis=2)
    mad = np.nanmedian(np.abs(a - med[:, :, None]), axis=2)
    out = {
        "bg_median": med,
        "bg_sigma": 1.4826 * mad,
        "zero_frac": (flat == 0).mean(axis=2),
        "peak": np.nanmax(clean, axis=2),
        "aperture_flux": np.nansum(clean[:, :, aper], axis=2),
        "n_nonfinite": (~finite).sum(axis=(1, 2)),
    }
    rz = np.where(finite[:, 1] & finite[:, 2], flat[:, 1] + flat[:, 2], 0).reshape(b, h, w)
    p = np.pad(rz, ((0, 0), (1, 1), (1, 1)))
    hs = p[:, :, :-2] + p[:, :, 1:-1] + p[:, :, 2:]
    sm = (hs[:, :-2] + hs[:, 1:-1] + hs[:, 2:]).reshape(b, h * w)
    sm[:, ~srch] = -np.inf
    k = sm.argmax(axis=1)
    out["centroid_offset_px"] = np.hypot(yy[k] - c, xx[k] - c)
    words = flat.view(np.uint32).astype(np.uint64)
    mult = np.uint64(0x9E3779B97F4A7C15) ^ np.arange(nb * h * w, dtype=np.uint64).reshape(nb, h * w)
    with np.errstate(over="ignore"):
        out["content_hash"] = np.bitwise_xor.reduce((words * mult).reshape(b, -1), axis=1)
    return out


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    rng = np.random.default_rng(1)
    pool = make_pool(300, rng)
    geo = geometry()
    stats(pool[:batch], geo)  # warm-up
    t = time.perf_counter()
    done = 0
    while done < n:
        m = min(batch, n - done)
        idx = (np.arange(done, done + m) % len(pool))
        stats(pool[idx], geo)
        done += m
    secs = time.perf_counter() - t
    print(f"numpy stats: {n} cutouts in {secs:.3f} s = {n / secs:.0f} cutouts/s (batch {batch})")


if __name__ == "__main__":
    main()
