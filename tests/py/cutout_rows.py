"""Reads a cutouts output folder with pyarrow and prints JSON per row:
galaxy_id, status, attempts, source, resampling, and the image as a flat
list (or null), plus the schema metadata and whether every shard reads."""
import glob
import json
import os
import sys

import pyarrow.dataset as ds
import pyarrow.parquet as pq

from lenspipe_output import committed_files

folder = sys.argv[1]
# A cutouts folder is read through its _SUCCESS. A version folder a killed
# run left (no _SUCCESS) is read file by file: each shard is one put, so
# whatever is there reads whole; a put cut short leaves only the store's
# temporary file (name#N), which is not a shard.
shards = committed_files(folder)
if shards is None:
    shards = sorted(glob.glob(os.path.join(glob.escape(folder), "*.parquet")))
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
json.dump({"files": [f.split("/")[-1] for f in files], "rows": table.num_rows, "metadata": meta,
           "image_type": str(table.schema.field("image").type), "by_id": rows}, sys.stdout)
