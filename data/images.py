"""Image ingest: read MNIST / CIFAR-10 in whichever layout the user has, as uint8 tensors.

The layouts each task reads (torchvision, Kaggle, ImageFolder) are in data/image_layouts.py; here:
decoding one image or IDX file, and `load_images`, which tries the task's layout readers in
--data-dir. Decoded once, then cached as .npz under the runs cache so a second run starts in seconds.
"""
from __future__ import annotations

import gzip
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import UsageError, first_line

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
