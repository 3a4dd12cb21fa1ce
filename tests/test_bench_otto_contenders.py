"""bench/otto_contenders.py end to end on a tiny synthetic Otto (no network, no ../shared/datasets):
the folds are `train otto`'s, the stopping rows an inner share of each fold's training rows, and
bench/report.py turns the saved rows into BENCHMARKS.md rows."""
import json
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))


def tiny_otto(folder, n=270, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 9
    feats = rng.poisson(0.3 + (np.arange(93)[None, :] % 9 == y[:, None]) * 0.5, size=(n, 93))
    cols = {f"feat_{i}": feats[:, i - 1] for i in range(1, 94)}
    pd.DataFrame({"id": np.arange(1, n + 1), **cols, "target": [f"Class_{k + 1}" for k in y]}).to_csv(
        folder / "train.csv", index=False)
    pd.DataFrame({"id": np.arange(1, 11), **{c: v[:10] for c, v in cols.items()}}).to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"id": np.arange(1, 11), **{f"Class_{k}": 1 / 9 for k in range(1, 10)}}).to_csv(
        folder / "sampleSubmission.csv", index=False)


@pytest.mark.slow      # a few seconds: LightGBM and (with pytabkit) two RealMLP epochs on 216 rows
def test_contenders_run_on_trains_folds_and_report(tmp_path, capsys):
    import otto_contenders
    from report import otto_contender_rows
    data, results = tmp_path / "otto", tmp_path / "results"
    data.mkdir()
    tiny_otto(data)
    contenders = ["lightgbm_kaggle"]
    try:
        import pytabkit  # noqa: F401
        contenders.append("realmlp_td")
    except ImportError:
        pass     # optional: `pip install pytabkit`
    otto_contenders.main(["--data-dir", str(data), "--folds-only", "0", "--contenders", *contenders,
                          "--realmlp-epochs", "2", "--results", str(results)])
    out = capsys.readouterr().out
    rows = json.loads((results / "otto_contenders.json").read_text())
    assert [r["contender"] for r in rows] == contenders
    for r in rows:
        [fold] = r["per_fold"]
        # fold 0 of 5 over 270 rows: 216 training rows, 15% of them (33) watched by the stopping
        assert r["folds"] == "0" and (fold["n_fit"], fold["n_stop"], fold["n_val"]) == (183, 33, 54)
        assert 0 < r["cv"] < 10 and f"logloss {r['cv']:.5f}" in out
    lines = otto_contender_rows(rows)
    assert len(lines) == len(contenders)
    assert "LightGBM, Kaggle settings" in lines[0] and "(seed 0; fold 0)" in lines[0]
    if "realmlp_td" in contenders:
        assert "2 of its default 256 epochs" in lines[1]
