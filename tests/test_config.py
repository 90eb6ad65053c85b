import pytest

from p5rec.config import RunConfig


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  backbone: mini\ntrain:\n  epochs: 3\n")
    cfg = RunConfig.from_yaml(path, overrides=["train.learning_rate=0.01", "ids.scheme=random"])
    assert cfg.model.backbone == "mini" and cfg.train.epochs == 3
    assert cfg.train.learning_rate == 0.01 and cfg.ids.scheme == "random"
    assert RunConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("trian:\n  epochs: 3\n", r"run.yaml: unknown key\(s\) \['trian'\]"),
        ("train:\n  epoch: 3\n", r"unknown key\(s\) \['epoch'\] for TrainConfig"),
        ("train:\n  epochs: three\n", r"`epochs` must be int"),
        ("finetune: adapters\n", "`finetune` must be one of"),
        ("model: [1, 2]\n", "expected a mapping"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, text, match):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises((ValueError, TypeError), match=match):
        RunConfig.from_yaml(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RunConfig.from_yaml(tmp_path / "nope.yaml")


def test_a_config_survives_a_round_trip_through_a_plain_dict():
    import json

    assert RunConfig.from_dict(RunConfig().to_dict()) == RunConfig()
    config = RunConfig.from_dict({"eval": {"tasks": ["sequential", "rating"], "ks": [5, 10]}})
    again = RunConfig.from_dict(json.loads(json.dumps(config.to_dict())))  # as saved with a model
    assert again == config
    assert isinstance(again.eval.ks, tuple) and again.eval.ks == (5, 10)


def test_a_string_where_a_list_belongs_is_an_error():
    with pytest.raises(ValueError, match=r"`eval`: `tasks` must be a list, got 'sequential'"):
        RunConfig.from_dict({"eval": {"tasks": "sequential"}})


# ------------------------------------------------------------------ every value checked up front (#17)
def test_numeric_text_becomes_a_number_for_numeric_fields(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  learning_rate: 1e-3\n  epochs: '3'\n  batch_size: 16.0\n")  # YAML: "1e-3" is text
    cfg = RunConfig.from_yaml(path)
    assert cfg.train.learning_rate == 0.001 and cfg.train.epochs == 3 and cfg.train.batch_size == 16
    assert isinstance(cfg.train.epochs, int) and isinstance(cfg.train.learning_rate, float)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("train.weight_decay=abc", r"`weight_decay` must be a number, got 'abc'"),
        ("model.dropout=abc", r"`dropout` must be a number, got 'abc'"),
        ("train.epochs=2.5", r"`epochs` must be int, got 2.5 \(a whole number\)"),
        ("train.learning_rate=nan", r"`learning_rate` must be a number"),
        ("train.plot=maybe", r"`plot` must be true or false, got 'maybe'"),
        ("train.weight_decay=-0.1", r"`weight_decay` must be >= 0, got -0.1"),
        ("train.max_grad_norm=0", r"`max_grad_norm` must be > 0"),
        ("output_dir=", r"`output_dir` \(''\) is empty: .*give a folder"),
        ("output_dir=  ", r"`output_dir` \('  '\) is empty"),
    ],
)
def test_bad_override_values_fail_before_any_work(tmp_path, override, match):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  epochs: 1\n")
    with pytest.raises(ValueError, match=match):
        RunConfig.from_yaml(path, overrides=[override])


def test_a_text_field_takes_the_override_as_written(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  epochs: 1\n")
    cfg = RunConfig.from_yaml(
        path, overrides=["train.mixed_precision=no", "data.source=synthetic", "train.resume_from=null"]
    )
    assert cfg.train.mixed_precision == "no" and cfg.train.resume_from is None
    cfg = RunConfig.from_yaml(path, overrides=["output_dir=2024", "train.output_dir=off"])
    assert cfg.output_dir == "2024" and cfg.train.output_dir == "off"
    # Numbers, lists and mappings still read as YAML.
    cfg = RunConfig.from_yaml(path, overrides=["eval.ks=[1, 5]", "examples.task_weights.rating=0.5"])
    assert cfg.eval.ks == (1, 5) and cfg.examples.task_weights["rating"] == 0.5


def test_yaml_booleans_in_a_text_field_say_to_quote(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  mixed_precision: no\n")
    with pytest.raises(ValueError, match=r"`mixed_precision` must be text, got False .*quote the text"):
        RunConfig.from_yaml(path)


def test_a_binary_config_file_is_named(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match=r"run.yaml: not a text file"):
        RunConfig.from_yaml(path)


@pytest.mark.parametrize("override", ["train.weight_decay=abc", "model.dropout=abc", "output_dir="])
def test_train_cli_rejects_bad_values_before_loading_data(tmp_path, capsys, monkeypatch, override):
    import p5rec.pipeline
    from p5rec.cli.main import main

    def no_work(*args, **kwargs):
        raise AssertionError("data or model work started")

    monkeypatch.setattr(p5rec.pipeline, "fit", no_work)
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  epochs: 1\n")
    assert main(["train", "--config", str(path), "--set", override]) == 1
    err = capsys.readouterr().err
    assert err.startswith("p5rec train: error:") and str(path) in err and override.split("=")[0].split(".")[-1] in err
