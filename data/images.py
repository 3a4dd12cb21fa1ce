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
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import UsageError, first_line
from data.ingest import check_ids, first_row, show       # the tables' checks: same messages for images

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp"}

log = logging.getLogger(__name__)


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
    """One image file -> uint8 (C, size, size); a wrong size is an error unless `resize`.

    As a viewer shows it: EXIF orientation applied (phone photos), transparency laid over white,
    16-bit grey scaled to 8 bits (a plain `convert("L")` clips it to white)."""
    from PIL import Image, ImageOps, UnidentifiedImageError
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                wide = np.asarray(img, dtype=np.int64).clip(0, 65535)   # 16-bit PNGs open as I;16 or, in
                sixteen = img.mode.startswith("I;16") or wide.max() > 255  # older Pillow, as 32-bit "I"
                img = Image.fromarray((wide >> 8 if sixteen else wide).astype(np.uint8))
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
            img = img.convert("L" if channels == 1 else "RGB")
            if img.size != (size, size):
                if not resize:
                    raise UsageError(f"{path}: image is {img.size[0]}x{img.size[1]}, expected {size}x{size}")
                img = img.resize((size, size), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise UsageError(f"{path}: unreadable image ({type(e).__name__})") from None
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def _labels(values, source: str, n_classes: int, names=None) -> np.ndarray:
    """Class labels as int64, or a one-line error naming `source` and the first bad value: labels
    must be whole numbers 0..n_classes-1 (or, with `names`, one of those class names)."""
    values = pd.Series(np.asarray(values).ravel())
    if names is not None:
        lookup = {str(c): i for i, c in enumerate(names)}
        bad = ~values.astype(str).isin(list(lookup)) | values.isna()
        if bad.any():
            raise UsageError(f"{source}: unknown class {show(values[bad].iloc[0])} in data row "
                             f"{first_row(bad)}; expected one of {', '.join(lookup)}")
        return values.astype(str).map(lookup).to_numpy(np.int64)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() | (numbers != numbers.round()) | (numbers < 0) | (numbers > n_classes - 1)
    if bad.any():
        raise UsageError(f"{source}: label {show(values[bad].iloc[0])} in data row {first_row(bad)} "
                         f"is not a class 0..{n_classes - 1}")
    return numbers.to_numpy(np.int64)


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
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))


# ---- layouts -------------------------------------------------------------------------------

def read_mnist_torchvision(d: Path):
    """MNIST as torchvision stores it (IDX files) in `d`, or None when `d` holds another layout."""
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
            for stem, images in (("train-images-idx3-ubyte", tx), ("t10k-images-idx3-ubyte", vx)):
                if images.ndim != 3 or images.shape[1:] != (28, 28):
                    raise UsageError(f"{names[stem]}: images are {'x'.join(map(str, images.shape[1:]))}, "
                                     "expected 28x28")
            if len(tx) != len(ty) or len(vx) != len(vy):
                raise UsageError(f"{raw}: image and label counts differ")
            ty = _labels(ty, str(names["train-labels-idx1-ubyte"]), 10)
            vy = _labels(vy, str(names["t10k-labels-idx1-ubyte"]), 10)
            return ImageSet(tx[:, None], ty, vx[:, None], vy, np.arange(1, len(vx) + 1), "torchvision")
    return None


def read_mnist_kaggle(d: Path):
    """Digit Recognizer's train.csv and test.csv in `d`, or None when `d` holds another layout."""
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
            raise UsageError(f"{d / name}: pixel values outside 0..255 or non-numeric in data row {first_row(bad)}")
    train_y = _labels(train["label"], f"{d / 'train.csv'}: column label", 10)
    test_y = None
    if (d / "test_labels.csv").is_file():
        path = d / "test_labels.csv"
        tl = _read_csv(path)
        if "Label" not in tl.columns:
            raise UsageError(f"{path}: missing column Label (the official labels of test.csv's rows, in order)")
        if len(tl) != len(test):
            raise UsageError(f"{path}: {len(tl)} labels for the {len(test)} rows of test.csv")
        test_y = _labels(tl["Label"], f"{path}: column Label", 10)
    as_img = lambda df: df[pixels].to_numpy(np.uint8).reshape(-1, 1, 28, 28)
    return ImageSet(as_img(train), train_y, as_img(test), test_y,
                    np.arange(1, len(test) + 1), "kaggle")


def read_cifar_torchvision(d: Path):
    """CIFAR-10's python batches (cifar-10-batches-py/) in `d`, or None when `d` holds another layout."""
    if not (d / "cifar-10-batches-py").is_dir():
        return None
    from torchvision.datasets import CIFAR10
    try:
        tr, te = CIFAR10(str(d), train=True, download=False), CIFAR10(str(d), train=False, download=False)
    except RuntimeError as e:      # torchvision's text ends "You can use download=True ...": not our option
        raise UsageError(f"{d / 'cifar-10-batches-py'}: {first_line(e).split('.')[0]}; expected the python "
                         "batches of cifar-10-python.tar.gz, unchanged (torchvision checks their MD5)") from None
    return ImageSet(tr.data.transpose(0, 3, 1, 2).copy(), np.asarray(tr.targets, np.int64),
                    te.data.transpose(0, 3, 1, 2).copy(), np.asarray(te.targets, np.int64),
                    np.arange(1, len(te.data) + 1), "torchvision")


def read_cifar_kaggle(d: Path, classes: tuple[str, ...]):
    """Kaggle's CIFAR-10 (train/<id>.png, trainLabels.csv) in `d`, or None when `d` holds another layout."""
    if not ((d / "trainLabels.csv").is_file() and (d / "train").is_dir()):
        return None
    labels = _read_csv(d / "trainLabels.csv")
    if not {"id", "label"} <= set(labels.columns):
        raise UsageError(f"{d / 'trainLabels.csv'}: missing column(s) id, label")
    train_ids = check_ids(labels["id"], d / "trainLabels.csv", "id").to_numpy()
    train_y = _labels(labels["label"], f"{d / 'trainLabels.csv'}: column label", len(classes), names=classes)

    def read_ids(folder: Path, ids) -> np.ndarray:
        out = []
        for i in ids:
            path = folder / f"{i}.png"
            if not path.is_file():
                raise UsageError(f"{path}: listed in the labels but missing")
            out.append(decode_image(path, 3, 32))
        return np.stack(out)
    train_x = read_ids(d / "train", train_ids)
    test_ids = []
    for p in _folder_images(d / "test") if (d / "test").is_dir() else []:
        if not p.stem.isdigit():
            raise UsageError(f"{p}: Kaggle's CIFAR-10 test images are named <id>.png with a numeric id")
        test_ids.append(int(p.stem))
    test_ids.sort()                                   # numerically: 1, 2, ..., 10, not 1, 10, 2
    test_y = None
    if (d / "testLabels.csv").is_file():
        path = d / "testLabels.csv"
        tl = _read_csv(path)
        if not {"id", "label"} <= set(tl.columns):
            raise UsageError(f"{path}: missing column(s) id, label")
        tl.index = check_ids(tl["id"], path, "id").to_numpy()
        missing = sorted(set(test_ids) - set(tl.index))
        if missing:
            raise UsageError(f"{path}: no label for test image id {missing[0]}"
                             + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
        test_y = _labels(tl.loc[test_ids, "label"], f"{path}: column label", len(classes), names=classes)
    return ImageSet(train_x, train_y,
                    read_ids(d / "test", test_ids) if test_ids else np.zeros((0, 3, 32, 32), np.uint8),
                    test_y, np.asarray(test_ids, dtype=np.int64), "kaggle")


def read_imagefolder(d: Path, classes: tuple[str, ...], channels: int, size: int):
    """train/<class>/* and test/<class>/* image files in `d`, or None when `d` holds another layout."""
    if not (d / "train").is_dir() or not any(p.is_dir() for p in (d / "train").iterdir()):
        return None
    lookup = {str(c): i for i, c in enumerate(classes)}

    def read_split(split: Path):
        xs, ys = [], []
        for cls_dir in sorted(p for p in split.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if cls_dir.name not in lookup:
                raise UsageError(f"{cls_dir}: unknown class folder; expected {', '.join(lookup)}")
            files = _folder_images(cls_dir)
            xs += [decode_image(p, channels, size) for p in files]
            ys += [lookup[cls_dir.name]] * len(files)
        if not xs:
            loose = _folder_images(split)
            raise UsageError(f"{split}: {len(loose)} image(s) not in class folders; this layout needs "
                             f"{split.name}/<class>/*.png" if loose else f"{split}: no images")
        return np.stack(xs), np.asarray(ys, np.int64)
    tx, ty = read_split(d / "train")
    vx, vy = read_split(d / "test") if (d / "test").is_dir() else (np.zeros((0, channels, size, size), np.uint8), None)
    return ImageSet(tx, ty, vx, vy, np.arange(1, len(vx) + 1), "imagefolder")


def _cache_key(task: str, d: Path) -> str:
    """Every file's path, size and mtime: any edit (a relabelled row, a re-extracted image) is a new key.
    Kaggle's CIFAR-10 (350,001 files) takes a few seconds to stat, against minutes to decode."""
    h = hashlib.sha1(f"{task}|{d.resolve()}".encode())
    for p in sorted(p for p in d.rglob("*") if p.is_file() and ".cache" not in p.parts):
        st = p.stat()
        h.update(f"|{p}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def load_images(task, data_dir: Path | None, cache_dir: Path) -> ImageSet:
    """Find and decode the task's images (cached), or download them with torchvision."""
    d = Path(data_dir) if data_dir else task.bundled
    if data_dir is not None and not d.is_dir():
        raise UsageError(f"--data-dir {data_dir} is not a folder")
    if d.is_dir():
        # <task>-<folder>-<contents>.npz: a folder's new contents replace its old cache (a version of
        # Kaggle's CIFAR-10, 350,000 images, is ~1.1 GB of uint8); other folders' caches stay
        folder = hashlib.sha1(str(d.resolve()).encode()).hexdigest()[:8]
        cache = cache_dir / f"{task.name}-{folder}-{_cache_key(task.name, d)}.npz"
        if cache.is_file():
            z = np.load(cache)
            return ImageSet(z["train_x"], z["train_y"], z["test_x"], z["test_y"] if z["has_test_y"] else None,
                            z["test_ids"], str(z["layout"]))
        # the one long silent step of a first run (MNIST's Kaggle CSVs: ~20 s on 2 cores; Kaggle's
        # CIFAR-10 PNGs: minutes), so say what it is doing before, and what it took after
        log.info("%s: decoding the images in %s into %s (first run on this data only; later runs read the cache)",
                 task.name, d, cache_dir)
        started = time.perf_counter()
        found = task.read_layout(d)
        if found is not None:
            log.info("%s: decoded %s training and %s test images (%s layout) in %.1f s", task.name,
                     f"{len(found.train_x):,}", f"{len(found.test_x):,}", found.layout, time.perf_counter() - started)
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp.npz")
            np.savez(tmp, train_x=found.train_x, train_y=found.train_y, test_x=found.test_x,
                     test_y=found.test_y if found.test_y is not None else np.zeros(0, np.int64),
                     has_test_y=found.test_y is not None, test_ids=found.test_ids, layout=found.layout)
            tmp.replace(cache)
            stale = [*cache_dir.glob(f"{task.name}-{folder}-*.npz"),
                     *(p for p in cache_dir.glob(f"{task.name}-*.npz") if len(p.stem) == len(task.name) + 17)]
            for old in stale:           # ^ the same folder's older contents; v1 names <task>-<16 hex>.npz
                if old != cache and not old.name.endswith(".tmp.npz"):
                    old.unlink(missing_ok=True)
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
