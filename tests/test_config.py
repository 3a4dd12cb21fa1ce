import json

import pytest

from core.config import TrainConfig, load_params, override
from core.errors import UsageError
from models import MODELS
from pipelines import TASKS


def test_override_applies_and_coerces_int_to_float():
    cfg = override(TrainConfig(task="t"), {"lr": 1, "folds": 3})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.folds == 3


@pytest.mark.parametrize("bad, msg", [({"nope": 1}, "unknown config key"), ({"folds": "3"}, "wants int"),
                                      ({"folds": True}, "wants int"), ({"batch_norm": 1}, "wants bool"),
                                      ({"dropout": 1.5}, "dropout"), ({"schedule": "step"}, "schedule"),
                                      ({"optimizer": "adam"}, "optimizer"), ({"momentum": 1.0}, "momentum"),
                                      ({"beta2": 1.0}, "beta2"), ({"norm_lr_scale": 0.0}, "norm_lr_scale"), ({"lookahead": 1}, "lookahead"),
                                      ({"precision": "fp16"}, "unknown precision 'fp16'")])
def test_override_rejects_bad_values(bad, msg):
    with pytest.raises(UsageError, match=msg):
        override(TrainConfig(task="t"), bad)


@pytest.mark.parametrize("name", TASKS.names())
def test_task_defaults_are_valid_configs(name):
    task = TASKS.create(name)
    cfg = task.config()
    assert cfg.task == name and cfg.folds >= task.min_folds


def test_params_file(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"lr": 0.01}))
    assert load_params(tmp_path / "p.json") == {"lr": 0.01}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_params(tmp_path / "bad.json")


def test_a_model_brings_its_own_defaults_and_explicit_values_still_win():
    """`register_model(defaults=...)` sits between the task's defaults and the user's overrides."""
    own = MODELS.tags["cifar_course"]["defaults"]
    cifar = TASKS.create("cifar10")
    assert cifar.config().model == "fastnet" and cifar.config().lr == cifar.recipe["lr"] != own["lr"]
    assert cifar.config(model="cifar_course").lr == own["lr"]
    assert cifar.config(model="cifar_course", lr=0.05).lr == 0.05
    assert TASKS.create("mnist").config(model="cifar_course").lr == own["lr"]     # any task
    assert cifar.config(model="cnn_basic").lr == cifar.defaults["lr"]              # no own defaults


@pytest.mark.parametrize("model", [m for m in MODELS.names() if MODELS.tags[m].get("defaults")])
def test_model_defaults_are_valid_config_keys(model):
    task = TASKS.create("cifar10" if MODELS.tags[model]["kind"] == "image" else "titanic")
    cfg = task.config(model=model)
    assert all(getattr(cfg, k) == v for k, v in MODELS.tags[model]["defaults"].items())


def test_a_tasks_recipe_trains_its_default_model_only():
    """CIFAR-10's SGD recipe is fastnet's: the default run and `--model fastnet` get it, another
    model keeps the task's AdamW defaults (SGD at lr 0.375 would wreck a net without BatchNorm),
    and the user's values still win."""
    cifar = TASKS.create("cifar10")
    for cfg in (cifar.config(), cifar.config(model="fastnet")):
        assert all(getattr(cfg, k) == v for k, v in cifar.recipe.items())
    other = cifar.config(model="preact_resnet")
    assert (other.optimizer, other.lr, other.lookahead, other.norm_lr_scale) == ("adamw", cifar.defaults["lr"], False, 1.0)
    # fastnet's width and epochs are the recipe's too: a ResNet keeps the task's, not a width tuned for fastnet
    assert (cifar.config().width, cifar.config().epochs) == (cifar.recipe["width"], cifar.recipe["epochs"])
    assert (other.width, other.epochs) == (cifar.defaults["width"], cifar.defaults["epochs"]) != (cifar.recipe["width"], cifar.recipe["epochs"])
    assert cifar.config(lr=0.5).lr == 0.5 and cifar.config(lookahead=False).lookahead is False
    from models import MODELS
    assert cifar.default_params == {**cifar.defaults, **MODELS.tags["fastnet"].get("defaults", {}), **cifar.recipe}
    titanic = TASKS.create("titanic")
    assert titanic.default_params == titanic.defaults      # no recipe; a combination registers no defaults


def test_a_recipe_wins_over_its_models_own_defaults():
    """The recipe was measured on the task for that model; the model's registered defaults are generic."""
    import dataclasses
    otto = TASKS.create("otto")
    otto = dataclasses.replace(otto, recipe={**otto.recipe, "lr": 4.5e-3})
    assert MODELS.tags["tabm"]["defaults"]["lr"] != 4.5e-3
    assert otto.config().lr == 4.5e-3 and otto.config(model="tabm").lr == 4.5e-3
    assert otto.config(model="mlp").lr == otto.defaults["lr"]          # another model: no recipe


def test_ottos_default_is_tabm_with_its_recipe_and_the_mlp_keeps_its_own_settings():
    """TabM-mini trains its whole 35-epoch schedule (stopping=fixed) with its own width; `--model mlp`
    gets the course MLP's measured settings (1024 units, refit, 40 epochs), none of TabM's."""
    otto = TASKS.create("otto")
    tabm, mlp = otto.config(), otto.config(model="mlp")
    assert (tabm.model, tabm.arch, tabm.stopping, tabm.epochs, tabm.width, tabm.dropout) == \
        ("tabm", "mini", "fixed", 35, 384, 0.1)
    assert tabm.heads == 9 and mlp.heads == TrainConfig(task="otto").heads      # the ninth member is the recipe's: TabM only
    assert (mlp.model, mlp.stopping, mlp.epochs, mlp.width, mlp.dropout) == ("mlp", "refit", 40, 1024, 0.4)
    assert otto.default_params == {k: v for k, v in tabm.to_dict().items() if k in otto.default_params}


def test_unknown_names_get_a_did_you_mean():
    with pytest.raises(UsageError, match=r"unknown config key\(s\) widht \(did you mean 'width'\?\); known: "):
        override(TrainConfig(task="t"), {"widht": 3})
    with pytest.raises(UsageError, match=r"unknown model 'mpl' \(did you mean 'mlp'\?\); known: "):
        MODELS.get("mpl")
    with pytest.raises(UsageError, match=r"^unknown task 'zzz'; known: "):           # nothing close: no guess
        TASKS.get("zzz")


def test_jobs_auto_is_config_jobs_0_and_the_cli_refuses_a_bare_0():
    from core.config import parse_jobs
    assert parse_jobs("auto") == 0 and parse_jobs("3") == 3
    assert override(TrainConfig(task="t", jobs=2), {"jobs": "auto"}).jobs == 0      # --set jobs=auto
    for bad in ("0", "-1", "two"):
        with pytest.raises(UsageError, match="--jobs wants 'auto' or a positive number"):
            parse_jobs(bad)


def test_a_saved_config_is_checked_as_the_cli_is(tmp_path):
    """A hand-edited or foreign config.json never reaches the trainer unchecked: wrong types,
    values out of range and unknown keys are one line naming the file."""
    from core.config import saved_config
    good = TrainConfig(task="titanic").to_dict()
    assert saved_config(good, tmp_path / "config.json") == TrainConfig(task="titanic")
    for bad, msg in [({"optimizer": "adam"}, "unknown optimizer 'adam'"), ({"lr": "fast"}, "'lr' wants float"),
                     ({"epochs": 0}, "epochs must be at least 1"), ({"schedule": "step"}, "unknown schedule"),
                     ({"transform": "sqrt"}, "unknown transform 'sqrt'"), ({"widht": 3}, "widht")]:
        with pytest.raises(UsageError, match=msg) as err:
            saved_config({**good, **bad}, tmp_path / "config.json")
        assert str(err.value).startswith(str(tmp_path / "config.json"))
    with pytest.raises(UsageError, match="task"):
        saved_config({k: v for k, v in good.items() if k != "task"}, "config.json")


def test_the_transforms_core_validates_are_the_ones_the_tasks_read():
    from core.config import TRANSFORMS
    from features.counts import CountTransform
    from features.generic import NUMERIC
    assert set(TRANSFORMS) == set(CountTransform.KINDS) | set(NUMERIC)


@pytest.mark.parametrize("setting", [{"optimizer": "adam"}, {"schedule": "step"}])
def test_the_trainer_never_falls_back_silently(setting):
    """The trainer refuses a name core.config would refuse, in case a config bypassed it."""
    import dataclasses
    import torch
    from models.trainer import make_optimizer, make_schedule
    cfg = dataclasses.replace(TrainConfig(task="t"), **setting)   # bypasses override()'s checks
    model = torch.nn.Linear(2, 1)
    with pytest.raises(ValueError, match="unknown"):
        opt = make_optimizer(model, cfg)
        make_schedule(opt, cfg, total_steps=100)


def test_beta2_is_adamws_second_moment_decay_and_survives_the_one_cycle():
    import torch
    from models.trainer import make_optimizer, make_schedule
    opt = make_optimizer(torch.nn.Linear(2, 1), override(TrainConfig(task="t"), {"beta2": 0.95}))
    make_schedule(opt, TrainConfig(task="t"), total_steps=100)      # one-cycle moves beta1 only
    assert opt.param_groups[0]["betas"][1] == 0.95


def test_cli_refuses_a_set_option_the_chosen_model_never_reads(tmp_path, capsys):
    from cli import main
    code = main(["train", "titanic", "--model", "diabetes_course", "--set", "width=64", "--runs-dir", str(tmp_path)])
    assert code == 2
    assert capsys.readouterr().err.strip() == ("error: model 'diabetes_course' does not read width "
                                               "(a fixed architecture: it has no options)")
    assert not any(tmp_path.iterdir())
