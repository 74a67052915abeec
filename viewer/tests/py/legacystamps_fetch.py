"""Fetches one FITS and one JPEG cutout with the published legacystamps
client, pointed at a local server instead of www.legacysurvey.org.

legacystamps builds its URLs for the public viewer
(`https://www.legacysurvey.org/viewer/{fits,jpeg}-cutout/?...`); only the
scheme and host are swapped for the local server's, the path and query are
left exactly as the client wrote them. Prints one JSON line: for each mode
the URL asked, the file written and what astropy / Pillow read from it.
"""

import argparse
import json
import sys

try:
    import legacystamps.legacystamps as stamps
    import requests
    from astropy.io import fits
    from PIL import Image
except ImportError as e:  # the caller turns this into a failing test
    sys.exit(f"missing Python package for the legacystamps test: {e.name} "
             "(scripts/install-test-deps.sh installs it)")

PUBLIC = "https://www.legacysurvey.org"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="http://HOST:PORT of the local server")
    ap.add_argument("--ra", type=float, required=True)
    ap.add_argument("--dec", type=float, required=True)
    ap.add_argument("--pixels", type=int, default=101)
    ap.add_argument("--layer", default="ls-dr10")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    asked = []
    real_get = requests.get

    def local_get(url, *a, **kw):
        if not url.startswith(PUBLIC + "/"):
            raise AssertionError(f"legacystamps asked for an unexpected URL: {url}")
        local = args.base + url[len(PUBLIC):]
        asked.append(local)
        return real_get(local, *a, **kw)

    stamps.requests.get = local_get
    pixscale = 0.262
    # legacystamps takes the size in degrees and truncates size*3600/pixscale;
    # half a pixel more gives exactly `pixels`.
    size_deg = (args.pixels + 0.5) * pixscale / 3600.0
    result = {}
    for mode in ("fits", "jpeg"):
        path = stamps.download(args.ra, args.dec, "grz", size=size_deg, mode=mode,
                               layer=args.layer, pixscale=pixscale, ddir=args.out)
        entry = {"url": asked[-1], "path": path}
        if mode == "fits":
            with fits.open(path) as hdul:
                entry["shape"] = list(hdul[0].data.shape)
                entry["bands"] = hdul[0].header.get("BANDS")
        else:
            with Image.open(path) as im:
                entry["format"] = im.format
                entry["mode"] = im.mode
                entry["shape"] = [im.height, im.width]
        result[mode] = entry
    print(json.dumps(result))


if __name__ == "__main__":
    main()
