"""Image ingest in every layout, the image pipeline end to end, predict-image, bad images."""
from __future__ import annotations

import gzip
import json
import re
import struct

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cli import app, main
from core.registry import UsageError
from data.images import read_idx
from pipelines import TASKS
from pipelines.cifar10 import CLASSES as CIFAR_CLASSES
from tests.conftest import SHARED, files_under

FAST = ["--epochs", "1", "--quiet", "--set", "width=8", "--set", "holdout=0.25"]   # tiny data: a bigger holdout


def digits(n: int, seed: int = 0):
    """Learnable toy digits: class c lights a horizontal bar at row 2 + 2c."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = np.zeros((n, 28, 28), np.uint8)
    for i, c in enumerate(y):
        x[i, 2 + 2 * c: 5 + 2 * c, 4:24] = 255
    return x, y


def write_idx(path, arr: np.ndarray, gz: bool):
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}i", *arr.shape)
    (gzip.open if gz else open)(path, "wb").write(header + arr.astype(np.uint8).tobytes())


@pytest.fixture(params=[True, False], ids=["gz", "raw"])
def mnist_torchvision(tmp_path, request):
    raw = tmp_path / "tv" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (tx, ty), (vx, vy) = digits(120), digits(30, seed=1)
    ext = ".gz" if request.param else ""
    for stem, arr in [("train-images-idx3-ubyte", tx), ("train-labels-idx1-ubyte", ty),
                      ("t10k-images-idx3-ubyte", vx), ("t10k-labels-idx1-ubyte", vy)]:
        write_idx(raw / f"{stem}{ext}", arr, request.param)
    return tmp_path / "tv", (tx, ty, vx, vy)


@pytest.fixture
def mnist_kaggle(tmp_path):
    d = tmp_path / "dr"
    d.mkdir()
    (tx, ty), (vx, _) = digits(120), digits(30, seed=1)
    cols = [f"pixel{i}" for i in range(784)]
    train = pd.DataFrame(tx.reshape(len(tx), -1), columns=cols)
    train.insert(0, "label", ty)
    train.to_csv(d / "train.csv", index=False)
    pd.DataFrame(vx.reshape(len(vx), -1), columns=cols).to_csv(d / "test.csv", index=False)
    return d


def rgb_images(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = (rng.random((n, 32, 32, 3)) * 60).astype(np.uint8)
    for i, c in enumerate(y):
        x[i, :, 3 * c: 3 * c + 3, c % 3] = 255
    return x, y


@pytest.fixture
def cifar_kaggle(tmp_path):
    d = tmp_path / "ck"
    (d / "train").mkdir(parents=True)
    (d / "test").mkdir()
    (tx, ty), (vx, _) = rgb_images(60), rgb_images(12, seed=1)
    for i, img in enumerate(tx, 1):
        Image.fromarray(img).save(d / "train" / f"{i}.png")
    for i, img in enumerate(vx, 1):
        Image.fromarray(img).save(d / "test" / f"{i}.png")
    pd.DataFrame({"id": range(1, 61), "label": np.asarray(CIFAR_CLASSES)[ty]}).to_csv(d / "trainLabels.csv", index=False)
    return d, tx, ty


@pytest.fixture
def cifar_imagefolder(tmp_path):
    d = tmp_path / "if"
    (tx, ty), (vx, vy) = rgb_images(40), rgb_images(10, seed=1)
    for split, xs, ys in (("train", tx, ty), ("test", vx, vy)):
        for i, (img, c) in enumerate(zip(xs, ys)):
            (d / split / CIFAR_CLASSES[c]).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(d / split / CIFAR_CLASSES[c] / f"{i:03d}.png")
    return d


def test_idx_reader_roundtrip_and_truncation(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", arr, gz=True)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), arr)
    (tmp_path / "b").write_bytes(open(tmp_path / "a.gz", "rb").read()[:10])
    with pytest.raises(UsageError, match="b:"):
        read_idx(tmp_path / "b")


def test_torchvision_layout(mnist_torchvision, tmp_path):
    d, (tx, ty, vx, vy) = mnist_torchvision
    imgs = TASKS.create("mnist").read_layout(d)
    assert imgs.layout == "torchvision" and imgs.train_x.shape == (120, 1, 28, 28)
    assert np.array_equal(imgs.train_x[:, 0], tx) and np.array_equal(imgs.test_y, vy)


def test_kaggle_digit_layout(mnist_kaggle):
    imgs = TASKS.create("mnist").read_layout(mnist_kaggle)
    assert imgs.layout == "kaggle" and imgs.test_y is None and imgs.test_ids.tolist() == list(range(1, 31))


def test_kaggle_cifar_ids_sort_numerically(cifar_kaggle):
    d, tx, ty = cifar_kaggle
    imgs = TASKS.create("cifar10").read_layout(d)
    assert imgs.test_ids.tolist() == list(range(1, 13))              # 1, 2, ..., 10, 11, 12, not 1, 10, 11, 12, 2
    assert np.array_equal(imgs.train_x[9], tx[9].transpose(2, 0, 1)) and np.array_equal(imgs.train_y, ty)


def test_imagefolder_layout(cifar_imagefolder):
    imgs = TASKS.create("cifar10").read_layout(cifar_imagefolder)
    assert imgs.layout == "imagefolder" and imgs.train_x.shape == (40, 3, 32, 32) and len(imgs.test_y) == 10


@pytest.mark.parametrize("break_it, msg", [
    (lambda d: (d / "train" / "3.png").write_bytes(b"not a png"), r"3\.png: unreadable image"),
    (lambda d: Image.new("RGB", (20, 20)).save(d / "train" / "4.png"), r"4\.png: image is 20x20, expected 32x32"),
    (lambda d: (d / "train" / "5.png").unlink(), r"5\.png: listed in the labels but missing"),
    (lambda d: (d / "trainLabels.csv").write_text("id,label\n1,spaceship\n"), "unknown class"),
])
def test_bad_images_name_the_file(cifar_kaggle, break_it, msg, tmp_path, capsys):
    d = cifar_kaggle[0]
    break_it(d)
    code = main(["train", "cifar10", *FAST, "--data-dir", str(d), "--runs-dir", str(tmp_path / "runs"),
                 "--out", str(tmp_path / "s.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and re.search(msg, err), err
    assert not (tmp_path / "s.csv").exists() and files_under(tmp_path / "runs" / "cifar10") == []


def test_mnist_end_to_end_with_cache_predict_and_predict_image(mnist_torchvision, tmp_path):
    d, _ = mnist_torchvision
    runs = tmp_path / "runs"
    run = lambda args: CliRunner().invoke(app, args + ["--runs-dir", str(runs)])
    res = run(["train", "mnist", *FAST, "--data-dir", str(d), "--out", str(tmp_path / "sub.csv")])
    assert res.exit_code == 0, res.output + repr(res.exception)
    sub = pd.read_csv(tmp_path / "sub.csv")
    assert list(sub.columns) == ["ImageId", "Label"] and sub["ImageId"].tolist() == list(range(1, 31))
    assert sub["Label"].between(0, 9).all()
    assert len(list((runs / ".cache").glob("mnist-*.npz"))) == 1             # decoded once, cached
    [run_dir] = [p for p in (runs / "mnist").iterdir()]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0 <= metrics["test_scores"]["accuracy"] <= 1                      # official test labels known

    res = run(["predict", "mnist", "--data-dir", str(d), "--out", str(tmp_path / "again.csv")])
    assert res.exit_code == 0 and (tmp_path / "again.csv").read_bytes() == (tmp_path / "sub.csv").read_bytes()

    Image.fromarray((np.random.default_rng(0).random((50, 40, 3)) * 255).astype(np.uint8)).save(tmp_path / "rgb.jpg")
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(tmp_path / "grey.png")
    res = run(["predict-image", "mnist", str(tmp_path / "rgb.jpg"), str(tmp_path / "grey.png")])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 2 and all(re.fullmatch(r".*\t\d\t[01]\.\d{4}", ln) for ln in lines)


@pytest.mark.parametrize("layout", ["kaggle", "imagefolder"])
def test_cifar_end_to_end(layout, cifar_kaggle, cifar_imagefolder, tmp_path):
    d = cifar_kaggle[0] if layout == "kaggle" else cifar_imagefolder
    res = CliRunner().invoke(app, ["train", "cifar10", *FAST, "--data-dir", str(d), "--runs-dir",
                                   str(tmp_path / "runs"), "--out", str(tmp_path / "sub.csv")])
    assert res.exit_code == 0, res.output + repr(res.exception)
    sub = pd.read_csv(tmp_path / "sub.csv")
    assert list(sub.columns) == ["id", "label"] and set(sub["label"]) <= set(CIFAR_CLASSES)
    # fastnet's stem was whitened on the training images before training: filters come in +/- pairs
    stem = torch.load(next((tmp_path / "runs").rglob("model0.pt")), weights_only=True)["state_dict"]["whiten.weight"]
    half = len(stem) // 2
    assert torch.allclose(stem[half:], -stem[:half])
    img = Image.fromarray(np.zeros((64, 64), np.uint8))
    img.save(tmp_path / "grey.png")
    res = CliRunner().invoke(app, ["predict-image", "cifar10", str(tmp_path / "grey.png"),
                                   "--runs-dir", str(tmp_path / "runs")])
    assert res.exit_code == 0 and res.output.split("\t")[1] in CIFAR_CLASSES


def test_image_task_without_data_fails_cleanly_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("pipelines.task.DATA_ROOT", tmp_path / "bundled")
    monkeypatch.setattr("data.images.torchvision_download.__defaults__", None, raising=False)
    import data.images as di
    monkeypatch.setattr(di, "torchvision_download",
                        lambda name, root: (_ for _ in ()).throw(UsageError(f"{name} download with torchvision failed")))
    code = main(["train", "mnist", "--quiet", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "download" in err, err


@pytest.mark.integration
@pytest.mark.skipif(not (SHARED / "mnist" / "MNIST" / "raw").is_dir(), reason=f"real MNIST not found at {SHARED / 'mnist'}")
def test_real_mnist_slice_learns(tmp_path):
    raw = SHARED / "mnist" / "MNIST" / "raw"
    out = tmp_path / "m" / "MNIST" / "raw"
    out.mkdir(parents=True)
    for stem, n in [("train-images-idx3-ubyte", 3000), ("train-labels-idx1-ubyte", 3000),
                    ("t10k-images-idx3-ubyte", 1000), ("t10k-labels-idx1-ubyte", 1000)]:
        write_idx(out / stem, read_idx(raw / f"{stem}.gz")[:n], gz=False)
    res = CliRunner().invoke(app, ["train", "mnist", "--epochs", "2", "--quiet", "--data-dir", str(tmp_path / "m"),
                                   "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "s.csv")])
    assert res.exit_code == 0, res.output + repr(res.exception)
    [run_dir] = list((tmp_path / "runs" / "mnist").iterdir())
    assert json.loads((run_dir / "metrics.json").read_text())["test_scores"]["accuracy"] > 0.9


def test_tta_averages_mirror_and_shifted_views():
    """CIFAR-10's prediction: 1/2 (x, mirror) + 1/4 each (shifted +1 px, shifted -1 px), each with its mirror."""
    from features.images import shift_images
    from pipelines.train import predict_proba
    torch.manual_seed(0)
    task = TASKS.create("cifar10")
    assert task.flip and task.tta_translate == 1
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    x = torch.randn(5, 3, 32, 32)

    def pair(v):
        return (net(v) + net(v.flip(3))) / 2
    with torch.no_grad():
        want = torch.softmax(pair(x) / 2 + (pair(shift_images(x, 1)) + pair(shift_images(x, -1))) / 4, 1)
    assert np.allclose(predict_proba(task, net, x), want.double().numpy(), atol=1e-6)


def test_read_only_idx_arrays_become_writable_tensors_without_a_warning():
    """read_idx returns np.frombuffer views (read-only); the trainer's tensors must not share them."""
    from pipelines.train import as_tensor
    raw = np.frombuffer(bytes(range(6)), dtype=np.uint8)
    assert not raw.flags.writeable
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # torch's "not writable" UserWarning would fail here
        t = as_tensor(raw, torch.device("cpu"), torch.uint8)
    t[0] = 7
    assert raw[0] == 0 and t.tolist() == [7, 1, 2, 3, 4, 5]
