"""`ImageTask`: what an image-classification competition declares (tasks/mnist.py, cifar10.py),
and how its images differ from tables at each stage: read as uint8 arrays (N, C, H, W), encoded
per fold as channel statistics with a per-batch normalise/augment, predicted as the average of
test-time views (airbench's TTA).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from core.config import TrainConfig
from core.errors import UsageError
from tasks.task import Encoded, TaskBase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageTask(TaskBase):
    """An image-classification competition: images in, one class per image out."""
    name: str
    title: str
    classes: tuple                       # class names in label-index order
    channels: int                        # 1 (grey) or 3 (RGB); predict-image converts to this
    size: int                            # square side in pixels
    read_layout: Callable[[Path], Any]   # folder -> data.images.ImageSet, or None when no known layout
    download: Callable[[Path], None]     # fetch into a folder (torchvision); raises UsageError offline
    submission: Callable[[np.ndarray, np.ndarray, "ImageTask"], pd.DataFrame]  # (ids, proba) -> file
    search_space: Callable[[Any], dict]
    flip: bool = False                   # horizontal-flip augmentation and TTA (not for digits)
    translate: int = 2                   # max random shift in pixels per training image
    tta_translate: int = 0               # TTA: also average views shifted by +-this many pixels (0 = off)
    metric: str = "accuracy"
    extra_metrics: tuple[str, ...] = ()
    monitor: str | None = None
    id_col: str | None = None
    kaggle: str | None = None            # competition slug for the Kaggle API
    kaggle_ids: range | None = None      # ids of the competition's test images, in submission order
    defaults: dict = field(default_factory=dict)
    recipe: dict = field(default_factory=dict)      # as Task's: the default model's own training recipe
    min_folds: int = 1                   # 1 = train on the official train split with a held-out slice
    kind = "image"
    channels_last = True                 # NHWC on CUDA: faster convs on tensor cores
    image_grids = True                   # --tensorboard draws training and misclassified images
    binary = False
    steady_label_metrics = True          # 5,000+ holdout images: accuracy is fine enough to stop on


    @property
    def out_features(self) -> int:
        return len(self.classes)

    def load(self, cfg: TrainConfig, device, data_dir: Path | None, cache_dir: Path):
        """The train and test images (uint8, N x C x H x W), labels and ids, from the first layout
        `read_layout` knows (data/images.py caches the decoded arrays under `cache_dir`)."""
        from core.runtime import autocast_dtype
        from data.images import load_images
        if cfg.precision == "auto" and autocast_dtype(device, "auto") is None:
            log.info("%s: this CPU has no native bfloat16, so the run trains in float32 and takes ~1.7-2.5x as "
                     "long as where it has (BENCHMARKS.md); --epochs and --set width=N trade accuracy for time",
                     self.name)
        imgs = load_images(self, data_dir, cache_dir)
        return imgs.train_x, imgs.test_x, None, imgs.train_y, imgs.test_ids, imgs.test_y

    def encode_fold(self, cfg: TrainConfig, inp, tr, va, test) -> Encoded:
        """Channel statistics of the fold's training images; the images stay uint8 on the device and
        the batch transform normalises (and, training, augments) each batch."""
        import torch
        from core.runtime import as_tensor
        from features.images import BatchTransform, ChannelStats, preflip
        device = inp.device
        stats = ChannelStats().fit(inp.train[tr])
        u8 = torch.uint8
        x_tr = as_tensor(inp.train[tr], device, u8)
        x_tr = preflip(x_tr, cfg.seed) if self.flip else x_tr    # the alternating flip's starting sides
        return Encoded(stats, x_tr, as_tensor(inp.train[va], device, u8),
                       as_tensor(test, device, u8) if test is not None and len(test) else None,
                       {"in_channels": self.channels, "image_size": self.size, "num_classes": self.out_features},
                       [str(c) for c in stats.get_feature_names_out()],
                       BatchTransform(stats, device, self.flip, self.translate))

    def predict_logits(self, model, x, batch_fn, precision: str):
        """The average over test-time views: x and its mirror when the task flips; with
        `tta_translate`, half the weight goes to those views shifted diagonally by +-tta_translate pixels."""
        import torch
        from features.images import shift_images
        from models.trainer import predict_logits
        bf = batch_fn or (lambda xb, training: xb)

        def views(shift: int) -> torch.Tensor:
            def view(xb, training, mirror=False):
                out = shift_images(bf(xb, training), shift)
                out = out.flip(3) if mirror else out
                return out.contiguous(memory_format=torch.channels_last) if out.dim() == 4 else out   # NHWC: see batch_transform
            logits = predict_logits(model, x, batch_transform=view, precision=precision)
            if self.flip:
                mirrored = predict_logits(model, x, batch_transform=lambda xb, t: view(xb, t, True), precision=precision)
                logits = (logits + mirrored) / 2
            return logits

        logits = views(0)
        if self.tta_translate:
            pixels = self.tta_translate
            logits = (logits + (views(pixels) + views(-pixels)) / 2) / 2
        return logits

    def row_ids(self, images: np.ndarray) -> np.ndarray:
        return np.arange(1, len(images) + 1)

    def load_test(self, data_dir: Path | None, input_path: Path | None, cache_dir: Path):
        """The test split's images and ids (no sample submission: the layouts ship none)."""
        from data.images import load_images
        if input_path is not None:
            raise UsageError("image tasks predict a --data-dir test split; for single files use predict-image")
        imgs = load_images(self, data_dir, cache_dir)
        if not len(imgs.test_x):
            raise UsageError(f"{self.name}: the data has no test images")
        return imgs.test_x, np.asarray(imgs.test_ids), None

    def test_input(self, data: np.ndarray, device):
        """One uint8 copy on the device for every fold."""
        import torch
        from core.runtime import as_tensor
        return as_tensor(data, device, torch.uint8)

    def fold_input(self, encoder, columns: list[str], x, device, fold_dir: Path):
        """The images as they are, with the fold's channel statistics as the batch transform."""
        from features.images import BatchTransform
        return x, BatchTransform(encoder, device, self.flip, self.translate)

    def read_images(self, paths) -> tuple[list[Path], np.ndarray]:
        """Image files of any size and mode (a folder: the images directly inside it), converted to
        the task's channels and size: (the files, uint8 N x C x H x W)."""
        from data.images import decode_image
        files = image_files(paths)
        return files, np.stack([decode_image(Path(f), self.channels, self.size, resize=True) for f in files])


def image_files(paths) -> list[Path]:
    """The given files, with a folder standing for the image files directly inside it (sorted)."""
    from data.images import IMAGE_EXTS
    out: list[Path] = []
    for f in map(Path, paths):
        if f.is_dir():
            found = sorted(p for p in f.iterdir() if p.is_file() and not p.name.startswith(".")
                           and p.suffix.lower() in IMAGE_EXTS | {".gif", ".webp", ".tif", ".tiff"})
            if not found:
                raise UsageError(f"{f}: folder holds no image files")
            out += found
        elif f.is_file():
            out.append(f)
        else:
            raise UsageError(f"{f}: file not found")
    return out
