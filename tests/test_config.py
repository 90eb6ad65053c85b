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
