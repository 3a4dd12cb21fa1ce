"""The CLI's commands, by group; `cli.py` is the entry that runs `app`. Each command parses its
options, builds a config and calls a pipeline function: the logic lives in pipelines/ and below.

    training.py   train, tune
    competition.py  init (a competition inferred from its files) and the options inference takes
    outputs.py    predict, blend, predict-image, download, submit
    stacking.py   stack
    inspect.py    tasks, models, report, runs

They are registered here, in the order `--help` lists them.
"""
from __future__ import annotations

import typer

from commands import competition, inspect, outputs, stacking, training

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Kaggle competition pipeline: ingest -> features -> k-fold training -> submission.")

for name, command in [("tasks", inspect.tasks), ("models", inspect.models), ("init", competition.init),
                      ("train", training.train),
                      ("tune", training.tune), ("predict", outputs.predict), ("blend", outputs.blend),
                      ("stack", stacking.stack),
                      ("predict-image", outputs.predict_image), ("report", inspect.report),
                      ("runs", inspect.list_runs), ("download", outputs.download), ("submit", outputs.submit)]:
    app.command(name)(command)
