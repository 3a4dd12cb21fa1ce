"""Image ingest: read MNIST / CIFAR-10 in whichever layout the user has, as uint8 tensors.

Layouts (detected in this order inside --data-dir):
  torchvision  MNIST: [MNIST/]raw/*-ubyte[.gz] (IDX);  CIFAR-10: cifar-10-batches-py/
  kaggle       MNIST (Digit Recognizer): train.csv (label,pixel0..) + test.csv [+ test_labels.csv]
               CIFAR-10: train/<id>.png + trainLabels.csv + test/<id>.png [+ testLabels.csv]
  imagefolder  train/<class>/*.png|jpg, test/<class>/*  (test labels known)
Decoded once, then cached as .npz under the runs cache so a second run starts in seconds.
"""
from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.registry import UsageError, first_line

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp"}


@dataclass
class ImageSet:
    train_x: np.ndarray            # uint8 (N, C, H, W)
    train_y: np.ndarray            # int64 (N,)
    test_x: np.ndarray             # uint8 (M, C, H, W)
    test_y: np.ndarray | None      # int64 (M,) when the layout knows the test labels
    test_ids: np.ndarray           # ids for the submission, in test order
    layout: str


# ---- decoding helpers ----------------------------------------------------------------------

def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format), plain or gzipped: big-endian header, then raw uint8."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as e:
        raise UsageError(f"{path}: unreadable IDX file ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UsageError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise UsageError(f"{path}: truncated IDX file ({data.size} of {int(np.prod(dims))} bytes)")
    return data.reshape(tuple(int(d) for d in dims)).copy()   # writable: torch warns on read-only buffers


def decode_image(path: Path, channels: int, size: int, resize: bool = False) -> np.ndarray:
    """One image file -> uint8 (C, size, size); a wrong size is an error unless `resize`."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if img.size != (size, size):
                if not resize:
                    raise UsageError(f"{path}: image is {img.size[0]}x{img.size[1]}, expected {size}x{size}")
                img = img.resize((size, size), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise UsageError(f"{path}: unreadable image ({type(e).__name__})") from None
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise UsageError(f"{path}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read as CSV: {first_line(e)}") from None
    if df.empty:
        raise UsageError(f"{path}: file has a header but no rows")
    return df


def _folder_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)


# ---- layouts -------------------------------------------------------------------------------

def _mnist_torchvision(d: Path):
    for raw in (d / "MNIST" / "raw", d / "raw", d):
        names = {}
        for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                     "t10k-labels-idx1-ubyte"):
            found = [p for p in (raw / stem, raw / f"{stem}.gz") if p.is_file()]
            if not found:
                break
            names[stem] = found[0]
        else:
            tx, ty = read_idx(names["train-images-idx3-ubyte"]), read_idx(names["train-labels-idx1-ubyte"])
            vx, vy = read_idx(names["t10k-images-idx3-ubyte"]), read_idx(names["t10k-labels-idx1-ubyte"])
            if len(tx) != len(ty) or len(vx) != len(vy):
                raise UsageError(f"{raw}: image and label counts differ")
            return ImageSet(tx[:, None], ty.astype(np.int64), vx[:, None], vy.astype(np.int64),
                            np.arange(1, len(vx) + 1), "torchvision")
    return None


def _mnist_kaggle(d: Path):
    if not ((d / "train.csv").is_file() and (d / "test.csv").is_file()):
        return None
    train, test = _read_csv(d / "train.csv"), _read_csv(d / "test.csv")
    pixels = [f"pixel{i}" for i in range(784)]
    for name, df in (("train.csv", train), ("test.csv", test)):
        missing = [c for c in pixels + (["label"] if name == "train.csv" else []) if c not in df.columns]
        if missing:
            raise UsageError(f"{d / name}: missing column(s) {', '.join(missing[:5])}")
        values = df[pixels].apply(pd.to_numeric, errors="coerce")
        bad = (values.isna() | (values < 0) | (values > 255)).any(axis=1)
        if bad.any():
            raise UsageError(f"{d / name}: pixel values outside 0..255 or non-numeric in data row {int(np.flatnonzero(bad)[0]) + 1}")
    if train["label"].isna().any() or not train["label"].between(0, 9).all():
        raise UsageError(f"{d / 'train.csv'}: column label: missing or out-of-range label")
    test_y = None
    if (d / "test_labels.csv").is_file():
        test_y = _read_csv(d / "test_labels.csv")["Label"].to_numpy(np.int64)
    as_img = lambda df: df[pixels].to_numpy(np.uint8).reshape(-1, 1, 28, 28)
    return ImageSet(as_img(train), train["label"].to_numpy(np.int64), as_img(test), test_y,
                    np.arange(1, len(test) + 1), "kaggle")


def _cifar_torchvision(d: Path):
    if not (d / "cifar-10-batches-py").is_dir():
        return None
    from torchvision.datasets import CIFAR10
    try:
        tr, te = CIFAR10(str(d), train=True, download=False), CIFAR10(str(d), train=False, download=False)
    except RuntimeError as e:
        raise UsageError(f"{d / 'cifar-10-batches-py'}: {e}") from None
    return ImageSet(tr.data.transpose(0, 3, 1, 2).copy(), np.asarray(tr.targets, np.int64),
                    te.data.transpose(0, 3, 1, 2).copy(), np.asarray(te.targets, np.int64),
                    np.arange(1, len(te.data) + 1), "torchvision")


def _cifar_kaggle(d: Path, classes: tuple[str, ...]):
    if not ((d / "trainLabels.csv").is_file() and (d / "train").is_dir()):
        return None
    labels = _read_csv(d / "trainLabels.csv")
    if not {"id", "label"} <= set(labels.columns):
        raise UsageError(f"{d / 'trainLabels.csv'}: missing column(s) id, label")
    lookup = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(labels["label"]) - set(lookup))
    if unknown:
        raise UsageError(f"{d / 'trainLabels.csv'}: column label: unknown class(es) {', '.join(map(str, unknown[:5]))}")

    def read_ids(folder: Path, ids) -> np.ndarray:
        out = []
        for i in ids:
            path = folder / f"{i}.png"
            if not path.is_file():
                raise UsageError(f"{path}: listed in the labels but missing")
            out.append(decode_image(path, 3, 32))
        return np.stack(out)
    train_x = read_ids(d / "train", labels["id"])
    test_ids = sorted(int(p.stem) for p in _folder_images(d / "test")) if (d / "test").is_dir() else []
    test_y = None
    if (d / "testLabels.csv").is_file():
        tl = _read_csv(d / "testLabels.csv").set_index("id")["label"]
        test_y = tl.loc[test_ids].map(lookup).to_numpy(np.int64)
    return ImageSet(train_x, labels["label"].map(lookup).to_numpy(np.int64),
                    read_ids(d / "test", test_ids) if test_ids else np.zeros((0, 3, 32, 32), np.uint8),
                    test_y, np.asarray(test_ids, dtype=np.int64), "kaggle")


def _imagefolder(d: Path, classes: tuple[str, ...], channels: int, size: int):
    if not (d / "train").is_dir() or not any(p.is_dir() for p in (d / "train").iterdir()):
        return None
    lookup = {str(c): i for i, c in enumerate(classes)}

    def read_split(split: Path):
        xs, ys = [], []
        for cls_dir in sorted(p for p in split.iterdir() if p.is_dir()):
            if cls_dir.name not in lookup:
                raise UsageError(f"{cls_dir}: unknown class folder; expected {', '.join(lookup)}")
            files = _folder_images(cls_dir)
            xs += [decode_image(p, channels, size) for p in files]
            ys += [lookup[cls_dir.name]] * len(files)
        if not xs:
            raise UsageError(f"{split}: no images")
        return np.stack(xs), np.asarray(ys, np.int64)
    tx, ty = read_split(d / "train")
    vx, vy = read_split(d / "test") if (d / "test").is_dir() else (np.zeros((0, channels, size, size), np.uint8), None)
    return ImageSet(tx, ty, vx, vy, np.arange(1, len(vx) + 1), "imagefolder")


def _cache_key(task: str, d: Path) -> str:
    files = sorted(p for p in d.rglob("*") if p.is_file() and ".cache" not in p.parts)
    sig = "|".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files[:200_000])
    return hashlib.sha1(f"{task}|{d.resolve()}|{len(files)}|{sig}".encode()).hexdigest()[:16]


def load_images(task, data_dir: Path | None, cache_dir: Path) -> ImageSet:
    """Find and decode the task's images (cached), or download them with torchvision."""
    d = Path(data_dir) if data_dir else task.bundled
    if data_dir is not None and not d.is_dir():
        raise UsageError(f"--data-dir {data_dir} is not a folder")
    if d.is_dir():
        cache = cache_dir / f"{task.name}-{_cache_key(task.name, d)}.npz"
        if cache.is_file():
            z = np.load(cache)
            return ImageSet(z["train_x"], z["train_y"], z["test_x"], z["test_y"] if z["has_test_y"] else None,
                            z["test_ids"], str(z["layout"]))
        found = task.read_layout(d)
        if found is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp.npz")
            np.savez(tmp, train_x=found.train_x, train_y=found.train_y, test_x=found.test_x,
                     test_y=found.test_y if found.test_y is not None else np.zeros(0, np.int64),
                     has_test_y=found.test_y is not None, test_ids=found.test_ids, layout=found.layout)
            tmp.replace(cache)
            return found
    if data_dir is None:
        task.download(task.bundled)
        found = task.read_layout(task.bundled)
        if found is not None:
            return found
    raise UsageError(f"{task.name}: no known image layout in {d} (torchvision, Kaggle or train/<class>/ "
                     f"folders); pass --data-dir DIR, or run online once to download with torchvision")


def torchvision_download(dataset: str, root: Path) -> None:
    """torchvision's own download (MNIST or CIFAR10); offline it fails with a clear message."""
    import torchvision.datasets as tvd
    try:
        for train in (True, False):
            getattr(tvd, dataset)(str(root), train=train, download=True)
    except Exception as e:
        raise UsageError(f"{dataset} download with torchvision failed ({type(e).__name__}: "
                         f"{first_line(e)[:120]}); pass --data-dir DIR "
                         f"with the files instead") from None
