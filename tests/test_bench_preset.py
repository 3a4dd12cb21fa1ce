"""bench/preset.py reads the preset's printed leaderboard; bench/report.py renders its row."""
from __future__ import annotations

from bench.preset import parse_output
from bench.report import preset_rows

OUT = """skipped catboost: catboost is not installed: pip install catboost
lightgbm: CV accuracy 0.83053  (5s)  run 20261205-091617-lightgbm-s0
tabm: stopped after 40s (1 of 5 folds in 40s project 200s, past the deadline); its run discarded
mlp #2: CV accuracy 0.84624  (12s)  run 20261205-091140-mlp-s0
titanic: preset best, 86s of 600s; leaderboard (CV accuracy):
  1. mlp #2 (20261205-091140-mlp-s0)                  0.84624
  2. stack (weights)                                  0.84400
  3. lightgbm (20261205-091617-lightgbm-s0)           0.83053
submission: /tmp/x/titanic-best.csv  (mlp #2)
"""


def test_the_leaderboard_the_submitted_entry_and_the_skipped_learners_are_read():
    got = parse_output(OUT)
    assert got["leaderboard"] == [("mlp #2 (20261205-091140-mlp-s0)", 0.84624), ("stack (weights)", 0.844),
                                  ("lightgbm (20261205-091617-lightgbm-s0)", 0.83053)]
    assert got["submitted"] == "mlp #2"
    assert [line.split(":")[0] for line in got["skipped"]] == ["skipped catboost", "tabm"]
    assert got["file"]
    no_test = parse_output(OUT.replace("submission: /tmp/x/titanic-best.csv  (mlp #2)",
                                       "diabetes has no test rows, so no submission; best: stack (weights). New rows: "
                                       "python cli.py stack ..."))
    assert no_test["submitted"] == "stack (weights)" and not no_test["file"]
    assert "best (no test rows) stack (weights) 0.84400" in preset_rows([{**_row(), **no_test}])[0]


def _row() -> dict:
    return {"task": "titanic", "preset": "best", "time_limit": "10m", "seed": 0, "wall_s": 90.0, "budget_s": 600.0,
            "rss_tree_mib": 2048, "metric": "accuracy", **parse_output(OUT), "command": "python bench/preset.py"}


def test_the_report_row_names_submitted_best_single_and_lightgbm():
    [line] = preset_rows([_row()])
    assert "submitted mlp #2 0.84624; best single mlp #2 0.84624; its lightgbm 0.83053" in line
    assert "inside its 600 s; peak 2.0 GiB" in line


def test_seeds_of_one_preset_get_a_summary_row():
    from bench.report import preset_summary_rows
    other = {**_row(), "seed": 1, "wall_s": 700.0, "rss_tree_mib": 3072, "command": "python bench/preset.py --seed 1",
             "leaderboard": [("lightgbm (20261205-1)", 0.85), ("mlp #2 (20261205-2)", 0.84)], "submitted": "lightgbm"}
    [line] = preset_summary_rows([_row(), other])
    assert "(seeds 0, 1; CV accuracy)" in line and "`python bench/preset.py --seed S`" in line
    assert "chosen entry 0.8481 ± 0.0027 (0.8462 / 0.8500)" in line
    assert "best single 0.8481 ± 0.0027" in line and "its lightgbm 0.8403 ± 0.0138 (0.8305 / 0.8500)" in line
    assert "1 of 2 inside their 600 s; peak 3.0 GiB at most" in line
    assert preset_summary_rows([_row()]) == []            # one seed: its own row says it all


def test_a_remark_stays_on_its_seeds_row_and_the_note_groups_the_seeds():
    from bench.report import preset_summary_rows
    noted = {**_row(), "note": "(new order)"}
    busy = {**noted, "seed": 1, "remark": "(a test shared the machine)", "command": "python bench/preset.py --seed 1"}
    assert "(seed 1; CV accuracy) (new order) (a test shared the machine)" in preset_rows([busy])[0]
    [line] = preset_summary_rows([noted, busy])
    assert "(seeds 0, 1; CV accuracy) (new order)" in line and "shared" not in line
