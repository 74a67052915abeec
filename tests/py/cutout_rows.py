"""Reads a cutouts output folder with pyarrow and prints JSON per row:
galaxy_id, status, attempts, source, resampling, and the image (and the
invvar and maskbits planes, when the cutouts have them) as a flat list (or
null), plus the schema metadata and whether every shard reads."""
import glob
import json
import os
import sys

import pyarrow.dataset as ds
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(__file__))
from lenspipe_output import committed_files  # noqa: E402

folder = sys.argv[1]
# A committed output: the files its _SUCCESS names. A version folder (what
# a killed run left): its *.parquet files; a put cut short by a kill can
# leave the store's temporary file (name#N) beside them, which is not a shard.
shards = committed_files(folder) or sorted(glob.glob(os.path.join(glob.escape(folder), "*.parquet")))
data = ds.dataset(shards, format="parquet")
files = sorted(data.files)
for f in files:
    pq.read_table(f)  # every visible shard is complete
table = data.to_table()
meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items() if k.decode().startswith("lenspipe")}
rows = {}
for r in table.to_pylist():
    rows.setdefault(r["galaxy_id"], []).append({
        "status": r["cutout_status"], "attempts": r["cutout_attempts"], "source": r["cutout_source"],
        "resampling": r["cutout_resampling"], "ra": r["ra"], "dec": r["dec"],
        "image": r["image"] if len(sys.argv) > 2 and sys.argv[2] == "--images" else (None if r["image"] is None else len(r["image"])),
    })
    full = len(sys.argv) > 2 and sys.argv[2] == "--images"
    for column, key in (("invvar", "invvar"), ("pixel_maskbits", "maskbits")):
        if column in r:
            rows[r["galaxy_id"]][-1][key] = r[column] if full else (None if r[column] is None else len(r[column]))
json.dump({"files": [f.split("/")[-1] for f in files], "rows": table.num_rows, "metadata": meta,
           "image_type": str(table.schema.field("image").type), "by_id": rows}, sys.stdout)
