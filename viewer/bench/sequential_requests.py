"""The original pipeline's way: one request at a time, parsed with astropy.

    cargo run --release --example bench_viewer -- --hold 60 &
    python3 bench/sequential_requests.py --url http://127.0.0.1:PORT/viewer/fits-cutout

Uses the same targets as examples/bench_viewer.rs and prints cutouts/s.
"""

import argparse
import io
import time

import requests
from astropy.io import fits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--layer", default="ls-dr10")
    ap.add_argument("--bands", default="grz")
    args = ap.parse_args()

    t0 = time.perf_counter()
    ok = 0
    for i in range(args.n):
        ra, dec = 150.0 + i * 0.01, 2.0 + i * 0.005
        params = dict(ra=ra, dec=dec, size=101, layer=args.layer,
                      pixscale=0.262, bands=args.bands)
        r = requests.get(args.url, params=params, timeout=60)
        if r.status_code != 200:
            continue
        with fits.open(io.BytesIO(r.content)) as hdul:
            data = hdul[0].data
            if data is not None and data.shape == (len(args.bands), 101, 101):
                ok += 1
    secs = time.perf_counter() - t0
    print(f"{args.n} cutouts ({ok} ok) in {secs:.2f} s: {args.n / secs:.1f} cutouts/s sequential")


if __name__ == "__main__":
    main()
