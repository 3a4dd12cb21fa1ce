"""Which data a run trained on, recorded in its config.json as `data` so that `runs` ranks, and
`blend` mixes, only runs of the same rows.

The fingerprint is a SHA-256 of the training rows as ingest hands them to the folds: every column
in file order, and the labels. Being taken after ingest, it follows every choice that changes rows
or columns (which file of the folder: plain, .gz or the Kaggle zip; the bundled copy; an image
layout) and nothing else: the same rows saved with other quoting, line endings or compression
fingerprint alike, while one edited cell changes the fingerprint. Image tasks hash the decoded uint8 arrays, already
in memory (CIFAR-10's 50,000 train images: ~0.2 s), not the 60,000 files again.

Left out, on purpose: the test file (it changes no out-of-fold row, and `blend` predicts one test
set with every run) and the split (folds, seed, `holdout`): every OOF row was predicted by a model
that never trained on it, so runs with other splits of the same rows rank and blend together.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from data import ingest

SCHEME = b"train-rows-sha256-v1"     # a new way of hashing must not match fingerprints made the old way


def fingerprint(train: pd.DataFrame | np.ndarray, y: np.ndarray) -> str:
    """64 hex digits for the training rows: a validated DataFrame (tables) or uint8 (N, C, H, W)
    images, and `y`, their class indices or regression values."""
    h = hashlib.sha256(SCHEME)
    if isinstance(train, pd.DataFrame):
        h.update(json.dumps([str(c) for c in train.columns]).encode())
        h.update(pd.util.hash_pandas_object(train, index=False).to_numpy().tobytes())   # one uint64 per row
    else:
        x = np.ascontiguousarray(train)
        h.update(f"{x.dtype}{x.shape}".encode())
        h.update(memoryview(x).cast("B"))
    y = np.asarray(y)          # class indices as int64 (as every run before regression hashed them); values as float64
    h.update(np.ascontiguousarray(y, dtype=np.float64 if y.dtype.kind == "f" else np.int64).tobytes())
    return h.hexdigest()


def record(task, train, y: np.ndarray, data_dir: Path | None) -> dict:
    """config.json's `data`: where the training rows came from, how many, their fingerprint."""
    if task.kind == "image":
        source = Path(data_dir or task.bundled).resolve()
    else:
        found = str(ingest.locate(task, "train", data_dir, warn=False))     # warned once already, at ingest
        archive, _, member = found.partition("::")
        source = f"{Path(archive).resolve()}::{member}" if member else Path(found).resolve()
    return {"source": str(source), "rows": int(len(y)), "fingerprint": fingerprint(train, y)}


def of_folder(task, data_dir: Path | None, cache_dir: Path) -> dict:
    """The record a run training from `data_dir` now would have (None: the bundled copy), read as
    `train` reads it (the image cache under `cache_dir`)."""
    if task.kind == "image":
        from data.images import load_images
        imgs = load_images(task, data_dir, cache_dir)
        return record(task, imgs.train_x, imgs.train_y, data_dir)
    df = ingest.load(task, "train", data_dir)
    return record(task, df, ingest.encode_target(task, df[task.target]), data_dir)


def describe(rec: dict | None) -> str:
    """One phrase for a run's data, in `runs` and error lines."""
    if not rec:
        return "data not recorded (trained before runs recorded their data)"
    return f"data {rec['fingerprint'][:8]} ({rec['rows']:,} rows, {rec['source']})"
