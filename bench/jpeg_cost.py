"""What the JPEG-q75 copy of CIFAR-10 costs a trained model at test time.

../shared/datasets/cifar10 holds the first 1,000 official test images twice: as JPEG-q75 files
(the copy every CIFAR-10 figure here trains and tests on) and as their lossless originals. This
scores a trained `cifar10` run on both, with every fold model and the TTA views, as `predict` does.
The model itself was trained on JPEG images, so the gap is a lower bound on what the copy costs.

    python bench/jpeg_cost.py --run latest                              # a run under runs/
    python bench/jpeg_cost.py --run latest --runs-dir bench/out/runs    # one bench/defaults.py trained
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import main_exit  # noqa: E402
from core.errors import UsageError  # noqa: E402
from core.runtime import resolve_device  # noqa: E402
from pipelines.predict import ensemble_proba, load_run  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets" / "cifar10"


def load_pairs(shared: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(JPEG images, lossless images, labels) of the first 1,000 official test images, (N, 3, 32, 32) uint8."""
    z = np.load(shared / "cifar10_jpeg_q75.npz")
    lossless = np.load(shared / "cifar10_lossless_subset.npz")
    x, y = lossless["x_test_first1000"], lossless["y_test_first1000"].astype(np.int64)
    blob, offsets = z["test_jpeg"], z["test_offsets"]
    jpeg = np.stack([np.asarray(Image.open(io.BytesIO(blob[offsets[i]:offsets[i + 1]].tobytes())).convert("RGB"))
                     for i in range(len(y))])
    if not np.array_equal(z["y_test"][:len(y)], y):
        raise UsageError(f"{shared}: the JPEG and lossless test images are not in the same order")
    return jpeg.transpose(0, 3, 1, 2).copy(), x.transpose(0, 3, 1, 2).copy(), y


def jpeg_cost(run: str, runs_root: Path | None, shared: Path, device: str = "cpu") -> dict:
    task, run_dir, fold_dirs, saved = load_run("cifar10", run, runs_root)
    jpeg, lossless, y = load_pairs(shared)
    dev = resolve_device(device)
    acc = {name: float((ensemble_proba(task, run_dir, fold_dirs, saved, x, dev).argmax(1) == y).mean())
           for name, x in (("jpeg", jpeg), ("lossless", lossless))}
    return {"run": run_dir.name, "images": len(y), **acc,
            "mean_abs_pixel_diff": float(np.abs(jpeg.astype(np.int16) - lossless).mean())}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="latest", help="a cifar10 run id, or latest")
    ap.add_argument("--runs-dir", type=Path, default=None, help="where the run is (default: runs/)")
    ap.add_argument("--shared", type=Path, default=SHARED, help="the folder with the two .npz files")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    if not (args.shared / "cifar10_lossless_subset.npz").is_file():
        raise UsageError(f"{args.shared}: no cifar10_lossless_subset.npz here (see ../shared/datasets/cifar10/SOURCE.md)")
    r = jpeg_cost(args.run, args.runs_dir, args.shared, args.device)   # no such run: a UsageError, one line
    print(f"run {r['run']}: {r['images']} official test images, mean |JPEG - original| {r['mean_abs_pixel_diff']:.2f} of 255")
    print(f"| JPEG-q75 copies | {r['jpeg']:.4f} |\n| lossless originals | {r['lossless']:.4f} |")
    return r


if __name__ == "__main__":
    main_exit(lambda: main() and 0)
