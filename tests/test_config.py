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
