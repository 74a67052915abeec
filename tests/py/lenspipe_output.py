"""Reads a lenspipe output folder as its readers must: through the folder's
_SUCCESS manifest, which names the committed version's files. A folder
without one (written by something else) is read as a plain Parquet dataset."""
import json
import os

import pyarrow.dataset as ds


def committed_files(folder):
    """The files _SUCCESS names, or None when the folder has no manifest."""
    manifest = os.path.join(folder, "_SUCCESS")
    if not os.path.exists(manifest):
        return None
    with open(manifest) as f:
        return [os.path.join(folder, entry["path"]) for entry in json.load(f)["files"]]


def dataset(folder):
    files = committed_files(folder)
    if files is None:
        return ds.dataset(folder, format="parquet", exclude_invalid_files=False)
    return ds.dataset(files, format="parquet")
