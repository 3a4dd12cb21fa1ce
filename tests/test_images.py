"""Image ingest in every layout, the image pipeline end to end, predict-image, bad images."""
from __future__ import annotations

import gzip
import json
import os
import re
import struct

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cli import app, main
from core.errors import UsageError
from data.images import read_idx
from pipelines import TASKS
from tasks.cifar10 import CLASSES as CIFAR_CLASSES
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


def write_cifar_batches(d, n_per_batch: int = 4):
    """torchvision's cifar-10-batches-py: pickled dicts of flat CHW rows; returns (train, test) as (x NCHW, y)."""
    import pickle
    root = d / "cifar-10-batches-py"
    root.mkdir(parents=True)
    parts = []
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        x, y = rgb_images(n_per_batch, seed=i)
        chw = x.transpose(0, 3, 1, 2)
        with open(root / name, "wb") as f:
            pickle.dump({"data": chw.reshape(len(chw), -1), "labels": y.tolist()}, f)
        parts.append((chw, y))
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(CIFAR_CLASSES)}, f)
    train = (np.concatenate([p[0] for p in parts[:5]]), np.concatenate([p[1] for p in parts[:5]]))
    return train, parts[5]


def test_cifar_torchvision_batches_layout(tmp_path, monkeypatch):
    (tx, ty), (vx, vy) = write_cifar_batches(tmp_path)
    # torchvision checks each file's MD5 against the official tarball's: a fixture cannot pass it
    import torchvision.datasets.cifar as tv_cifar
    monkeypatch.setattr(tv_cifar.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)
    imgs = TASKS.create("cifar10").read_layout(tmp_path)
    assert imgs.layout == "torchvision" and imgs.train_x.shape == (20, 3, 32, 32) and imgs.train_x.flags.c_contiguous
    assert np.array_equal(imgs.train_x, tx) and np.array_equal(imgs.train_y, ty)
    assert np.array_equal(imgs.test_x, vx) and np.array_equal(imgs.test_y, vy)
    assert imgs.test_ids.tolist() == [1, 2, 3, 4]


def test_cifar_torchvision_batches_that_fail_the_checksum_are_one_line_errors(tmp_path, capsys):
    write_cifar_batches(tmp_path)
    code = main(["train", "cifar10", *FAST, "--data-dir", str(tmp_path), "--runs-dir", str(tmp_path / "runs"),
                 "--out", str(tmp_path / "s.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "cifar-10-batches-py" in err and "MD5" in err, err
    assert not (tmp_path / "s.csv").exists() and files_under(tmp_path / "runs" / "cifar10") == []


@pytest.mark.parametrize("break_it, msg", [
    (lambda d: (d / "train" / "3.png").write_bytes(b"not a png"), r"3\.png: unreadable image"),
    (lambda d: Image.new("RGB", (20, 20)).save(d / "train" / "4.png"), r"4\.png: image is 20x20, expected 32x32"),
    (lambda d: (d / "train" / "5.png").unlink(), r"5\.png: listed in the labels but missing"),
    (lambda d: (d / "trainLabels.csv").write_text("id,label\n1,spaceship\n"), "unknown class"),
    (lambda d: (d / "trainLabels.csv").write_text("id,label\n1,cat\n1,dog\n"), r"trainLabels\.csv: column id: duplicated id 1 in data row 2"),
    (lambda d: (d / "trainLabels.csv").write_text("id,label\n1,cat\n,dog\n"), r"trainLabels\.csv: column id: missing id in data row 2"),
    (lambda d: (d / "test" / "1 (1).png").write_bytes((d / "test" / "1.png").read_bytes()), r"1 \(1\)\.png: .*numeric id"),
    (lambda d: (d / "testLabels.csv").write_text("id,label\n1,cat\n"), r"testLabels\.csv: no label for test image id 2 and 10 more"),
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


def test_a_runs_precision_is_used_again_by_predict_and_predict_image(cifar_kaggle, tmp_path, monkeypatch):
    """Image tasks default to precision auto; a run trained at bf16 predicts at bf16 later, and its
    re-predicted submission is byte-identical to the one train wrote."""
    import pipelines.learners
    import pipelines.proba
    assert TASKS.create("cifar10").config().precision == "auto" == TASKS.create("mnist").config().precision
    used, real = [], pipelines.proba.predict_proba
    # training's predictions and predict's both go through the torch learner
    monkeypatch.setattr(pipelines.learners, "predict_proba", lambda *a, **k: used.append(a[4]) or real(*a, **k))
    runs = ["--runs-dir", str(tmp_path / "runs")]
    res = CliRunner().invoke(app, ["train", "cifar10", *FAST, "--set", "precision=bf16", "--data-dir",
                                   str(cifar_kaggle[0]), "--out", str(tmp_path / "sub.csv"), *runs])
    assert res.exit_code == 0, res.output + repr(res.exception)
    [config] = (tmp_path / "runs").rglob("config.json")
    assert json.loads(config.read_text())["config"]["precision"] == "bf16"
    assert json.loads((config.parent / "metrics.json").read_text())["autocast"] == "bfloat16"
    res = CliRunner().invoke(app, ["predict", "cifar10", "--data-dir", str(cifar_kaggle[0]),
                                   "--out", str(tmp_path / "again.csv"), *runs])
    assert res.exit_code == 0 and (tmp_path / "again.csv").read_bytes() == (tmp_path / "sub.csv").read_bytes()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "black.png")
    res = CliRunner().invoke(app, ["predict-image", "cifar10", str(tmp_path / "black.png"), *runs])
    assert res.exit_code == 0, res.output
    assert used and set(used) == {"bf16"}


def test_precision_auto_on_a_cpu_without_bf16_trains_in_float32_and_says_so(cifar_kaggle, tmp_path,
                                                                              monkeypatch, caplog):
    monkeypatch.setattr("core.runtime.cpu_has_bf16", lambda: False)
    loud = [a for a in FAST if a != "--quiet"]             # the note is an INFO line
    res = CliRunner().invoke(app, ["train", "cifar10", *loud, "--data-dir", str(cifar_kaggle[0]),
                                   "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "sub.csv")])
    assert res.exit_code == 0, res.output + repr(res.exception)
    [metrics] = (tmp_path / "runs").rglob("metrics.json")
    assert json.loads(metrics.read_text())["autocast"] == "off"
    assert "no native bfloat16, so the run trains in float32" in caplog.text


def test_image_task_without_data_fails_cleanly_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("tasks.task.DATA_ROOT", tmp_path / "bundled")
    monkeypatch.setattr("data.images.torchvision_download.__defaults__", None, raising=False)
    import data.images as di
    monkeypatch.setattr(di, "torchvision_download",
                        lambda name, root: (_ for _ in ()).throw(UsageError(f"{name} download with torchvision failed")))
    code = main(["train", "mnist", "--quiet", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "download" in err, err


@pytest.mark.integration
@pytest.mark.skipif(not (SHARED / "mnist" / "MNIST" / "raw").is_dir(), reason=f"real MNIST not found at {SHARED / 'mnist'}")
@pytest.mark.slow
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
    from pipelines.proba import predict_proba
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


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_a_fold_preflips_its_training_images_only_for_tasks_that_flip(name):
    """CIFAR-10's training rows start the alternating flip on seeded random sides; validation and
    test rows, and MNIST's (digits are not mirror images), are encoded as they are."""
    from types import SimpleNamespace
    from pipelines.cv import encode_fold
    task = TASKS.create(name)
    x = np.random.default_rng(0).integers(0, 256, (60, task.channels, task.size, task.size)).astype(np.uint8)
    inp = SimpleNamespace(train=x, device=torch.device("cpu"))
    tr, va = np.arange(40), np.arange(40, 60)
    enc = encode_fold(task, task.config(seed=5), inp, tr, va, x[:10])
    raw = torch.as_tensor(x[tr])
    mirrored = (enc.x_train == raw.flip(3)).flatten(1).all(1)
    assert ((enc.x_train == raw).flatten(1).all(1) | mirrored).all()
    assert (0 < mirrored.sum() < 40) if task.flip else mirrored.sum() == 0
    assert torch.equal(enc.x_val, torch.as_tensor(x[va])) and torch.equal(enc.x_test, torch.as_tensor(x[:10]))
    again = encode_fold(task, task.config(seed=5), inp, tr, va, None)
    assert torch.equal(again.x_train, enc.x_train)                # seeded: a resumed fold sees the same sides


def test_read_only_idx_arrays_become_writable_tensors_without_a_warning():
    """read_idx returns np.frombuffer views (read-only); the trainer's tensors must not share them."""
    from core.runtime import as_tensor
    raw = np.frombuffer(bytes(range(6)), dtype=np.uint8)
    assert not raw.flags.writeable
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # torch's "not writable" UserWarning would fail here
        t = as_tensor(raw, torch.device("cpu"), torch.uint8)
    t[0] = 7
    assert raw[0] == 0 and t.tolist() == [7, 1, 2, 3, 4, 5]


def _break_digits(d, train_label=None, test_labels=None):
    if train_label is not None:
        train = pd.read_csv(d / "train.csv")
        train["label"] = train["label"].astype(object)
        train.loc[5, "label"] = train_label
        train.to_csv(d / "train.csv", index=False)
    if test_labels is not None:
        (d / "test_labels.csv").write_text(test_labels)


@pytest.mark.parametrize("kw, msg", [
    (dict(train_label="seven"), r"train\.csv: column label: label 'seven' in data row 6 is not a class 0\.\.9"),
    (dict(train_label=3.5), r"train\.csv: column label: label .*3\.5.* in data row 6"),
    (dict(test_labels="ImageId,Digit\n1,3\n"), r"test_labels\.csv: missing column Label"),
    (dict(test_labels="Label\n1\n2\n"), r"test_labels\.csv: 2 labels for the 30 rows of test\.csv"),
    (dict(test_labels="Label\n" + "1\n" * 29 + "12\n"), r"test_labels\.csv: column Label: label 12 in data row 30"),
])
def test_bad_digit_recognizer_labels_are_one_line_errors_and_leave_no_files(mnist_kaggle, kw, msg, tmp_path, capsys):
    _break_digits(mnist_kaggle, **kw)
    code = main(["train", "mnist", *FAST, "--data-dir", str(mnist_kaggle), "--runs-dir", str(tmp_path / "runs"),
                 "--out", str(tmp_path / "s.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and re.search(msg, err), err
    assert not (tmp_path / "s.csv").exists() and files_under(tmp_path / "runs" / "mnist") == []


@pytest.mark.parametrize("which, arr, msg", [
    ("train-labels-idx1-ubyte", np.full(120, 10), r"train-labels-idx1-ubyte: label 10 in data row 1 is not a class"),
    ("t10k-labels-idx1-ubyte", np.full(30, 200), r"t10k-labels-idx1-ubyte: label 200"),
    ("train-images-idx3-ubyte", np.zeros((120, 32, 32)), r"train-images-idx3-ubyte: images are 32x32, expected 28x28"),
])
def test_bad_idx_contents_are_one_line_errors(tmp_path, which, arr, msg):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (tx, ty), (vx, vy) = digits(120), digits(30, seed=1)
    files = {"train-images-idx3-ubyte": tx, "train-labels-idx1-ubyte": ty, "t10k-images-idx3-ubyte": vx,
             "t10k-labels-idx1-ubyte": vy, which: arr}
    for stem, a in files.items():
        write_idx(raw / stem, a, gz=False)
    with pytest.raises(UsageError, match=msg):
        TASKS.create("mnist").read_layout(tmp_path)


def test_imagefolder_skips_hidden_folders_and_names_loose_test_images(cifar_imagefolder):
    (cifar_imagefolder / "train" / ".ipynb_checkpoints").mkdir()
    imgs = TASKS.create("cifar10").read_layout(cifar_imagefolder)          # Jupyter's folder is not a class
    assert imgs.train_x.shape == (40, 3, 32, 32)
    test = cifar_imagefolder / "test"
    for cls in list(test.iterdir()):
        for f in cls.iterdir():
            f.rename(test / f"{cls.name}-{f.name}")
        cls.rmdir()
    with pytest.raises(UsageError, match=r"test: 10 image\(s\) not in class folders; this layout needs test/<class>/"):
        TASKS.create("cifar10").read_layout(cifar_imagefolder)


def test_the_decode_cache_key_changes_with_any_file_edit(cifar_kaggle):
    from data.images import _cache_key
    d = cifar_kaggle[0]
    before = _cache_key("cifar10", d)
    assert _cache_key("cifar10", d) == before
    labels = d / "trainLabels.csv"
    labels.write_text(labels.read_text().replace(",cat", ",dog", 1) + " ")       # one relabelled row
    assert _cache_key("cifar10", d) != before


def test_decode_image_shows_the_picture_as_a_viewer_would(tmp_path):
    from data.images import decode_image
    ink = np.zeros((28, 28, 4), np.uint8)
    ink[10:18, 5:23, 3] = 255                          # black strokes on a transparent background
    Image.fromarray(ink, "RGBA").save(tmp_path / "rgba.png")
    grey = decode_image(tmp_path / "rgba.png", 1, 28)[0]
    assert grey[0, 0] == 255 and grey[12, 10] == 0     # transparency laid over white, not black
    wide = Image.fromarray(np.full((28, 28), 40000, np.uint16))
    wide.save(tmp_path / "i16.png")
    assert decode_image(tmp_path / "i16.png", 1, 28)[0, 0, 0] == 40000 >> 8     # scaled, not clipped to 255
    Image.fromarray(np.full((28, 28), 40000, np.int32), "I").save(tmp_path / "i32.tif")   # older Pillow's 16-bit
    assert decode_image(tmp_path / "i32.tif", 1, 28)[0, 0, 0] == 40000 >> 8
    bar = np.zeros((20, 40), np.uint8)
    bar[:, :10] = 255                                  # stored landscape, bright on the left
    exif = Image.Exif()
    exif[0x0112] = 6                                   # EXIF: rotate 90 degrees clockwise to view
    Image.fromarray(bar).save(tmp_path / "phone.jpg", exif=exif)
    viewed = decode_image(tmp_path / "phone.jpg", 1, 40, resize=True)[0]
    assert viewed[:10].mean() > 200 and viewed[-10:].mean() < 50            # portrait, bright on top


def test_predict_image_takes_a_folder_and_refuses_bombs(mnist_torchvision, tmp_path, capsys):
    d, _ = mnist_torchvision
    runs = tmp_path / "runs"
    assert main(["train", "mnist", *FAST, "--data-dir", str(d), "--runs-dir", str(runs),
                 "--out", str(tmp_path / "s.csv")]) == 0
    pics = tmp_path / "pics"
    pics.mkdir()
    for name in ("b.png", "a.jpg"):
        Image.fromarray(np.zeros((30, 30), np.uint8)).save(pics / name)
    (pics / "notes.txt").write_text("not an image")
    res = CliRunner().invoke(app, ["predict-image", "mnist", str(pics), "--runs-dir", str(runs)])
    assert res.exit_code == 0, res.output
    assert [ln.split("\t")[0] for ln in res.output.strip().splitlines()] == [str(pics / "a.jpg"), str(pics / "b.png")]
    Image.new("1", (15000, 15000)).save(tmp_path / "bomb.png")           # over Pillow's pixel limit
    capsys.readouterr()
    code = main(["predict-image", "mnist", str(tmp_path / "bomb.png"), "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "bomb.png: unreadable image (DecompressionBombError)" in err


def test_new_contents_of_a_data_folder_replace_its_old_cache_and_leave_other_folders(mnist_kaggle, tmp_path):
    from data.images import load_images
    task, cache_dir = TASKS.create("mnist"), tmp_path / "cache"
    other = tmp_path / "other"
    import shutil
    shutil.copytree(mnist_kaggle, other)
    load_images(task, other, cache_dir)
    load_images(task, mnist_kaggle, cache_dir)
    (cache_dir / "mnist-0123456789abcdef.npz").write_bytes(b"")        # a cache named the old way
    assert len(list(cache_dir.glob("mnist-*.npz"))) == 3
    train = pd.read_csv(mnist_kaggle / "train.csv")
    train.loc[0, "label"] = (train.loc[0, "label"] + 1) % 10
    before = (mnist_kaggle / "train.csv").stat().st_mtime_ns
    train.to_csv(mnist_kaggle / "train.csv", index=False)       # same size: only the mtime tells the edit
    os.utime(mnist_kaggle / "train.csv", ns=(before, before + 2_000_000_000))   # coarse-mtime filesystems
    assert load_images(task, mnist_kaggle, cache_dir).train_y[0] == train.loc[0, "label"]   # not the stale cache
    names = sorted(p.name for p in cache_dir.glob("mnist-*.npz"))
    assert len(names) == 2 and "mnist-0123456789abcdef.npz" not in names     # one per folder
    assert load_images(task, other, cache_dir).train_y[0] != train.loc[0, "label"]          # other folder's cache kept


def test_the_first_decode_says_what_it_is_doing_and_the_cached_run_is_quiet(mnist_kaggle, tmp_path, caplog):
    """Decoding is a first run's long silent step (MNIST's Kaggle CSVs: ~20 s): one line before it,
    one with the count and time after; a run that reads the cache says nothing."""
    from data.images import load_images
    task, cache = TASKS.create("mnist"), tmp_path / "cache"
    with caplog.at_level("INFO", logger="data.images"):
        load_images(task, mnist_kaggle, cache)
    lines = [r.getMessage() for r in caplog.records if r.name == "data.images"]
    assert len(lines) == 2 and lines[0].startswith(f"mnist: decoding the images in {mnist_kaggle} into {cache}"), lines
    assert re.match(r"mnist: decoded 120 training and 30 test images \(kaggle layout\) in [\d.]+ s$", lines[1]), lines
    caplog.clear()
    with caplog.at_level("INFO", logger="data.images"):
        load_images(task, mnist_kaggle, cache)
    assert not [r for r in caplog.records if r.name == "data.images"]


def test_an_image_train_without_some_classes_warns_naming_them(mnist_kaggle, tmp_path, capsys):
    train = pd.read_csv(mnist_kaggle / "train.csv")
    train[train["label"] < 8].to_csv(mnist_kaggle / "train.csv", index=False)      # no 8s or 9s
    code = main(["train", "mnist", "--epochs", "1", "--set", "width=8", "--set", "holdout=0.25",
                 "--data-dir", str(mnist_kaggle), "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "s.csv")])
    err = capsys.readouterr().err
    assert code == 0 and "mnist: 2 of the 10 classes never appear in the training data (8, 9)" in err, err
