"""The layouts MNIST and CIFAR-10 come in, each read into an ImageSet of uint8 arrays (data/images.py
decodes and caches). Detected in this order inside --data-dir:
  torchvision  MNIST: [MNIST/]raw/*-ubyte[.gz] (IDX);  CIFAR-10: cifar-10-batches-py/
  kaggle       MNIST (Digit Recognizer): train.csv (label,pixel0..) + test.csv [+ test_labels.csv]
               CIFAR-10: train/<id>.png + trainLabels.csv + test/<id>.png [+ testLabels.csv]
  imagefolder  train/<class>/*.png|jpg, test/<class>/*  (test labels known)
Every bad label or file is a one-line error naming the file, as for tables.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import UsageError, first_line
from data.images import IMAGE_EXTS, ImageSet, decode_image, read_idx
from data.ingest import check_ids, first_row, show       # the tables' checks: same messages for images


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
