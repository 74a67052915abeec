"""Checks python/lenspipe_reader against a plain pyarrow read of the same
committed cutouts: per galaxy_id the same image (reshaped to bands x size x
size), label, split and weight; the normalisations as documented. Prints
JSON facts; exits non-zero on a mismatch."""
import json
import os
import sys

import numpy as np

# The reader as pip installed it (LENSPIPE_READER_PATH), else the source tree.
sys.path.insert(0, os.environ.get("LENSPIPE_READER_PATH")
                or os.path.join(os.path.dirname(__file__), "..", "..", "python", "lenspipe_reader"))
import lenspipe_reader  # noqa: E402
from lenspipe_output import dataset  # noqa: E402

folder = sys.argv[1]
table = dataset(folder).to_table()
meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
size, bands = int(meta["lenspipe.cutout.size"]), meta["lenspipe.cutout.bands"]
expected = {}
for r in table.to_pylist():
    if r["cutout_status"] == "ok":
        expected[str(r["galaxy_id"])] = r

raw = lenspipe_reader.load(folder, normalisation="none")
assert raw.images.shape == (len(expected), len(bands), size, size), (raw.images.shape, len(expected))
assert raw.images.dtype == np.float32
assert list(raw.galaxy_id) == sorted(expected), "rows in galaxy_id order, every ok cutout once"
for i, gid in enumerate(raw.galaxy_id):
    r = expected[gid]
    want = np.asarray(r["image"], dtype=np.float32).reshape(len(bands), size, size)
    assert np.array_equal(raw.images[i], want), gid
    assert raw.labels[i] == r["label"] and raw.splits[i] == r["split"] and raw.weights[i] == r["weight"], gid
    if "invvar" in table.column_names:
        iv = np.asarray(r["invvar"], dtype=np.float32).reshape(len(bands), size, size)
        assert np.array_equal(raw.invvar[i], iv), gid
has_invvar = "invvar" in table.column_names
assert (raw.invvar is not None) == has_invvar
if has_invvar:
    assert raw.invvar.shape == raw.images.shape and raw.invvar.dtype == np.float32
    assert np.all(raw.invvar > 0), "the synthetic sky's invvar is 1/sigma^2 everywhere"

by_split = {}
for split in ("train", "val", "test"):
    part = lenspipe_reader.load(folder, split=split, normalisation="none")
    assert all(s == split for s in part.splits)
    by_split[split] = len(part)
assert sum(by_split.values()) == len(raw)

# asinh: per cutout and band, asinh((x - median) / max(1.4826 MAD, 1e-3)).
norm = lenspipe_reader.load(folder)
assert norm.normalisation == "asinh" and norm.provenance == "project_choice"
x = raw.images[0, 0].astype(np.float64)
med = np.median(x)
scale = max(1.4826 * np.median(np.abs(x - med)), 1e-3)
assert np.allclose(norm.images[0, 0], np.arcsinh((x - med) / scale), atol=1e-4)
assert abs(float(np.median(norm.images[0, 0]))) < 1e-6

try:
    lenspipe_reader.load(folder, split="nope")
    raise AssertionError("a bad split is an error")
except ValueError as e:
    assert "nope" in str(e)
torch_tested = False
if hasattr(lenspipe_reader, "CutoutDataset"):
    import torch
    from torch.utils.data import DataLoader

    d = lenspipe_reader.CutoutDataset(folder, split=None)
    assert len(d) == len(norm)
    image, label, weight = d[0]
    assert tuple(image.shape) == (len(bands), size, size) and int(label) == int(norm.labels[0])
    # Batches as a training loop sees them: the normalised arrays, in order.
    batch = next(iter(DataLoader(d, batch_size=4)))
    assert tuple(batch[0].shape) == (4, len(bands), size, size)
    assert torch.equal(batch[0], torch.from_numpy(norm.images[:4]))
    assert batch[1].tolist() == [int(v) for v in norm.labels[:4]]
    assert batch[2].dtype == torch.float32
    torch_tested = True
json.dump({"rows": len(raw), "reader": os.path.dirname(lenspipe_reader.__file__), "labels": sorted(set(int(v) for v in raw.labels)),
           "by_split": by_split, "torch": torch_tested, "invvar": has_invvar}, sys.stdout)
