"""Prints facts about a Parquet output directory as JSON, read with pyarrow
(an independent reader): row count, column names in order, and the sorted
(sweep_file, row_index) keys with optional extra columns. A lenspipe output
folder is read as its _SUCCESS manifest says (the committed version's files);
any other folder as a plain Parquet dataset."""
import json
import sys

from lenspipe_output import dataset

folder = sys.argv[1]
extra = sys.argv[2].split(",") if len(sys.argv) > 2 and sys.argv[2] else []
data = dataset(folder)
table = data.to_table()
keys = sorted(k for k in zip(table.column("sweep_file").to_pylist(), table.column("row_index").to_pylist()) if k[0] is not None) if "sweep_file" in table.column_names else []
out = {"rows": table.num_rows, "columns": table.column_names, "keys": keys}
for name in extra:
    out[name] = table.column(name).to_pylist()
json.dump(out, sys.stdout)
