"""Fetches one cutout from a fits-cutout URL and prints its pixels, read by
astropy (an independent reader), as JSON: shape, BANDS and the values.

    fetch_cutout.py URL RA DEC SIZE LAYER BANDS
"""
import io
import json
import sys
import urllib.request

from astropy.io import fits

url, ra, dec, size, layer, bands = sys.argv[1:7]
query = f"{url}?ra={ra}&dec={dec}&size={size}&layer={layer}&pixscale=0.262&bands={bands}"
with urllib.request.urlopen(query, timeout=30) as answer:
    body = answer.read()
with fits.open(io.BytesIO(body)) as hdul:
    data = hdul[0].data
    header = hdul[0].header
json.dump({"shape": list(data.shape), "bands": header["BANDS"], "crpix1": header["CRPIX1"],
           "values": [float(v) for v in data.astype("float32").ravel()]}, sys.stdout)
