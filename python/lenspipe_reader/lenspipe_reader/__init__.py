"""Reads a lenspipe cutouts folder as arrays ready to train on.

Only numpy and pyarrow are needed at import. ``CutoutDataset`` (a PyTorch
``Dataset``) is available when torch is installed.

    from lenspipe_reader import load
    data = load("runs/paper_iv_matched/cutouts", split="train")
    data.images   # (N, bands, size, size) float32, normalised
    data.labels   # (N,) int64: 1 lens, 0 non-lens
    data.weights  # (N,) float64: the sample's weight column
"""
from .reader import (
    NORMALISATIONS,
    NORMALISATION_PROVENANCE,
    Cutouts,
    committed_files,
    load,
    normalise,
)

__all__ = [
    "NORMALISATIONS",
    "NORMALISATION_PROVENANCE",
    "Cutouts",
    "committed_files",
    "load",
    "normalise",
]

try:  # torch is optional
    from .torch_dataset import CutoutDataset  # noqa: F401

    __all__.append("CutoutDataset")
except ImportError:
    pass
