"""Committed cutouts to numpy arrays: images, labels, splits, weights."""
import json
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

#: How each normalisation is chosen. Both are lenspipe's choice, not a
#: Paper IV value (provenance project_choice).
NORMALISATION_PROVENANCE = "project_choice"

#: ``none``: nanomaggies as stored. ``asinh``: per cutout and band,
#: ``asinh((x - median) / (1.4826 * MAD))`` with that band's median and
#: median absolute deviation (floored at 1e-3 nmgy): sky near 0 in units of
#: its noise, faint arcs near linear, bright cores compressed, as the
#: viewer's asinh colour scaling does. ``robust``: the same without asinh.
NORMALISATIONS = ("none", "asinh", "robust")

_MAD_FLOOR = 1e-3


def committed_files(folder):
    """The Parquet files of the folder's committed output.

    A lenspipe output is complete once its _SUCCESS exists, naming the
    committed version's files (relative to the folder, so it may move).
    Files of an unfinished run are never read.
    """
    success = os.path.join(folder, "_SUCCESS")
    if not os.path.exists(success):
        raise FileNotFoundError(
            f"{folder}: no _SUCCESS (the stage has not committed an output here)"
        )
    with open(success) as f:
        return [os.path.join(folder, e["path"]) for e in json.load(f)["files"]]


def normalise(images, method="asinh"):
    """Normalises (N, bands, size, size) float32 images per cutout and band."""
    if method not in NORMALISATIONS:
        raise ValueError(f"normalisation {method!r} is not one of {NORMALISATIONS}")
    images = np.asarray(images, dtype=np.float32)
    if method == "none" or images.size == 0:
        return images.copy()
    flat = images.reshape(images.shape[0], images.shape[1], -1)
    median = np.median(flat, axis=2, keepdims=True)
    mad = np.median(np.abs(flat - median), axis=2, keepdims=True)
    scale = np.maximum(1.4826 * mad, _MAD_FLOOR)
    centred = (flat - median) / scale
    out = np.arcsinh(centred) if method == "asinh" else centred
    return out.reshape(images.shape).astype(np.float32)


def plane_array(column, n, shape, dtype, fill):
    """A fixed-size list column as an (n, *shape) array, ``fill`` where null."""
    out = np.full((n, *shape), fill, dtype=dtype)
    if n == 0:
        return out
    column = column.combine_chunks()
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    per_row = int(np.prod(shape))
    # Null rows still hold their slots in a fixed-size list's values.
    values = column.values.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    values = values[column.offset * per_row:][: n * per_row]
    out[valid] = values.reshape(n, *shape)[valid]
    return out


@dataclass
class Cutouts:
    images: np.ndarray  # (N, bands, size, size) float32
    labels: np.ndarray  # (N,) int64
    splits: np.ndarray  # (N,) str
    weights: np.ndarray  # (N,) float64
    galaxy_id: np.ndarray  # (N,) str
    bands: str
    size: int
    normalisation: str
    provenance: str = NORMALISATION_PROVENANCE
    # (N, bands, size, size) float32 inverse variance, unnormalised
    # (1/nanomaggies^2), NaN for rows without it; None when the cutouts were
    # made without the invvar plane.
    invvar: Optional[np.ndarray] = None
    # (N, size, size) int32 DR10 maskbits of every pixel, -1 for rows
    # without them; None when the cutouts were made without the plane.
    maskbits: Optional[np.ndarray] = None

    def __len__(self):
        return len(self.labels)


def load(folder, split=None, normalisation="asinh", columns=()):
    """Reads the committed cutouts of ``folder`` whose status is ``ok``.

    ``split``: ``train``, ``val``, ``test`` or None for all. Rows are in
    galaxy_id order, so two reads of the same folder agree row for row.
    ``columns``: extra target columns to return in ``Cutouts.extra``.
    """
    data = ds.dataset(committed_files(folder), format="parquet")
    meta = {k.decode(): v.decode() for k, v in (data.schema.metadata or {}).items()}
    try:
        size = int(meta["lenspipe.cutout.size"])
        bands = meta["lenspipe.cutout.bands"]
    except KeyError as e:
        raise ValueError(f"{folder}: the cutouts' schema lacks metadata {e}") from None
    for needed in ("label", "split", "weight", "galaxy_id", "image", "cutout_status"):
        if needed not in data.schema.names:
            raise ValueError(f"{folder}: no column {needed!r} (cutouts of a lenspipe sample are expected)")
    if split is not None and split not in ("train", "val", "test"):
        raise ValueError(f"split {split!r} is not train, val or test")
    planes = [p for p in ("invvar", "pixel_maskbits") if p in data.schema.names]
    table = data.to_table(
        columns=["galaxy_id", "label", "split", "weight", "image", "cutout_status", *planes, *columns]
    )
    # lenspipe writes strings as Utf8View; filter and sort on plain strings.
    for i, field in enumerate(table.schema):
        if str(field.type) == "string_view":
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
    keep = pc.equal(table.column("cutout_status"), "ok")
    if split is not None:
        keep = pc.and_(keep, pc.equal(table.column("split"), split))
    table = table.filter(keep).sort_by("galaxy_id")
    n = table.num_rows
    image = table.column("image").combine_chunks()
    values = image.values.to_numpy(zero_copy_only=False) if n else np.zeros(0, np.float32)
    images = values.astype(np.float32, copy=False).reshape(n, len(bands), size, size)
    out = Cutouts(
        images=normalise(images, normalisation),
        labels=table.column("label").to_numpy().astype(np.int64),
        splits=np.asarray(table.column("split").to_pylist(), dtype=object),
        weights=table.column("weight").to_numpy().astype(np.float64),
        galaxy_id=np.asarray([str(g) for g in table.column("galaxy_id").to_pylist()], dtype=object),
        bands=bands,
        size=size,
        normalisation=normalisation,
    )
    if "invvar" in planes:
        out.invvar = plane_array(table.column("invvar"), n, (len(bands), size, size), np.float32, np.nan)
    if "pixel_maskbits" in planes:
        out.maskbits = plane_array(table.column("pixel_maskbits"), n, (size, size), np.int32, -1)
    out.extra = {c: table.column(c).to_numpy(zero_copy_only=False) for c in columns}
    return out
