"""A PyTorch Dataset over committed cutouts (imported only with torch)."""
import torch
from torch.utils.data import Dataset

from .reader import load


class CutoutDataset(Dataset):
    """(image, label, weight) per cutout: image a (bands, size, size) float32
    tensor, label an int64 scalar, weight a float32 scalar."""

    def __init__(self, folder, split=None, normalisation="asinh", transform=None):
        self.data = load(folder, split=split, normalisation=normalisation)
        self.images = torch.from_numpy(self.data.images)
        self.labels = torch.from_numpy(self.data.labels)
        self.weights = torch.from_numpy(self.data.weights.astype("float32"))
        self.transform = transform

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        image = self.images[i]
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[i], self.weights[i]
