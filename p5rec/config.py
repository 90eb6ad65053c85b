"""One typed config for a run, in three layers: defaults < YAML file < command-line overrides.

Each stage owns its dataclass (`SyntheticConfig`, `IdConfig`, `ExampleConfig`, `ModelConfig`,
`LoraSettings`, `TrainConfig`, `EvalConfig`); `RunConfig` only groups them. Unknown keys and wrong
types are errors naming the file and the key, raised before any work starts. The stage configs live
in light modules (`p5rec.<stage>.config`), so importing this one loads neither torch nor datasets.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from p5rec.data.config import SyntheticConfig
from p5rec.evaluation.config import EvalConfig
from p5rec.ids.config import IdConfig
from p5rec.modeling.config import LoraSettings, ModelConfig
from p5rec.templates.config import ExampleConfig
from p5rec.training.config import TrainConfig

FINETUNE_MODES = ("full", "lora")
# What `validation` is unless a config says otherwise: cheap enough to run after every epoch.
DEFAULT_VALIDATION: dict[str, Any] = {
    "tasks": ("sequential",),
    "split": "valid",
    "max_users": 2000,
    "ks": (10,),
    "num_beams": 10,
    "max_templates": 1,
    "template_splits": ("seen",),
    "greedy_rating": False,
}


@dataclass
class DataConfig:
    """Where the data comes from.

    Args:
        source: "synthetic" (built-in, generated) or the path of a dataset prepared by
            `p5rec data prepare`.
        sources: several datasets for one multi-domain model (instead of `source`); the k-th gets
            ID prefixes "a_", "b_", ... ("a_item_12", "a_user_3") and its own saved Recommender.
        synthetic: generator settings, used when `source` is "synthetic".
        split_seed: seed of the 8:1:1 review split.
    """

    source: str = "synthetic"
    sources: list[str] = field(default_factory=list)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    split_seed: int = 2022

    def __post_init__(self) -> None:
        if self.sources and self.source != "synthetic":
            raise ValueError(f"set `source` ({self.source!r}) or `sources` ({self.sources}), not both")
        if len(self.sources) > 26:
            raise ValueError(f"`sources` holds {len(self.sources)} datasets; at most 26 get an ID prefix (a_ .. z_)")


@dataclass
class RunConfig:
    """Everything one training run needs; saved with the model.

    Args:
        data, ids, examples, model, lora, train, eval: per-stage settings.
        validation: evaluation during training, on the valid split, for early stopping and the
            choice of the best weights (default: next-item NDCG@10 and likelihood of up to 2,000 users
            on the first seen template); None: no validation, every epoch is trained.
        finetune: "full" (every weight) or "lora" (adapter through peft).
        prompts: extra prompt folders layered over the shipped defaults (later wins).
        output_dir: where the trained model directory is written.
    """

    data: DataConfig = field(default_factory=DataConfig)
    ids: IdConfig = field(default_factory=IdConfig)
    examples: ExampleConfig = field(default_factory=ExampleConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    finetune: str = "full"
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    validation: EvalConfig | None = field(default_factory=lambda: EvalConfig(**DEFAULT_VALIDATION))
    prompts: list[str] = field(default_factory=list)
    output_dir: str = "runs/p5rec-model"

    def __post_init__(self) -> None:
        if not self.output_dir.strip():
            raise ValueError(
                f"`output_dir` ({self.output_dir!r}) is empty: the trained model would have nowhere to be saved; "
                "give a folder, e.g. runs/my-model"
            )
        if self.finetune not in FINETUNE_MODES:
            raise ValueError(f"`finetune` must be one of {FINETUNE_MODES}, got {self.finetune!r}")
        metric = self.train.early_stopping_metric
        if self.validation is None:
            if self.train.early_stopping_patience:
                raise ValueError("`train.early_stopping_patience` needs a `validation` section to validate on")
        elif metric.split("/")[0] not in self.validation.tasks:
            raise ValueError(
                f"`train.early_stopping_metric` ({metric!r}) names a task that `validation.tasks` "
                f"({list(self.validation.tasks)}) does not evaluate"
            )

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "config") -> RunConfig:
        return from_dict(cls, values, where)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, overrides: list[str] | None = None) -> RunConfig:
        """Read a YAML file, then apply `key.sub=value` overrides (values parsed as YAML scalars)."""
        values = read_yaml_mapping(path)
        apply_overrides(values, overrides or [])
        return from_dict(cls, values, str(path))


def read_yaml_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """A config file's top-level mapping; a missing file, binary data or bad YAML is an error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a text file (byte {e.start} is not UTF-8); give a YAML run config") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return values


def apply_overrides(values: dict[str, Any], overrides: list[str], cls: type | None = None) -> dict[str, Any]:
    """Set `a.b.c=value` entries (the CLI's `--set` flags) in the nested dict `values` of dataclass `cls`.

    The value is read as YAML (numbers, lists, ``null``), except for a field of type `str`, which takes
    the text as written: ``--set train.mixed_precision=no`` is "no", where YAML would read false.

    Args:
        values: the config as nested dicts, changed in place (and returned).
        overrides: ``key.subkey=value`` strings.
        cls: the dataclass `values` describes (default :class:`RunConfig`); it decides which keys are text.
    """
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key.subkey=value")
        key, raw = item.split("=", 1)
        node = values
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {p!r} is not a section")
        node[parts[-1]] = _override_value(_field_type(cls or RunConfig, parts), raw)
    return values


def _field_type(cls: Any, parts: list[str]) -> Any:
    """The declared type at the dotted path `parts` below dataclass `cls`; None when it is not known."""
    tp = cls
    for part in parts:
        tp = _without_none(tp)
        if dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp)
            if part not in hints:
                return None
            tp = hints[part]
        elif typing.get_origin(tp) is dict and len(typing.get_args(tp)) == 2:
            tp = typing.get_args(tp)[1]  # `part` is a key of a mapping field
        else:
            return None
    return tp


def _without_none(tp: Any) -> Any:
    """`X` for `X | None`; other types unchanged."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _override_value(tp: Any, raw: str) -> Any:
    if _without_none(tp) is str:
        if tp is not str and raw.strip() in ("null", "~"):  # an optional text field can be unset
            return None
        return raw
    return yaml.safe_load(raw) if raw.strip() else ""


def from_dict(cls: type, values: dict[str, Any], where: str) -> Any:
    """Build dataclass `cls` from a dict; unknown keys and wrong types name the key and `where`."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping for {cls.__name__}, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} for {cls.__name__}; valid keys: {sorted(names)}")
    if cls is RunConfig and isinstance(values.get("validation"), dict):
        # A validation section refines the default one (sequential, 2,000 users, seen template), as the
        # other sections refine their dataclass defaults, rather than starting from an every-task evaluation.
        values = {**values, "validation": {**DEFAULT_VALIDATION, **values["validation"]}}
    kwargs = {}
    for name, value in values.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}: `{name}`")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{where}: {e}") from None


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, where)
            except (TypeError, ValueError) as e:
                errors.append(str(e))
        raise ValueError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin in (list, tuple, collections.abc.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where} must be a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(inner, v, where) for v in value]
        # YAML has lists only; tuple and Sequence fields get tuples, as their defaults are.
        return items if origin is list or tp is list else tuple(items)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where} must be a mapping, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {k: _coerce(vt, v, where) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float:
        return _as_float(value, where)
    if tp is int:
        return _as_int(value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is str and not isinstance(value, str):
        hint = " (YAML reads yes/no/on/off as true/false: quote the text, e.g. 'no')" if isinstance(value, bool) else ""
        raise ValueError(f"{where} must be text, got {value!r}{hint}")
    return value


def _as_float(value: Any, where: str) -> float:
    """A number, or text holding one: YAML reads ``1e-3`` (no dot) as the string "1e-3"."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"{where} must be a number, got {value!r}") from None
    else:
        raise ValueError(f"{where} must be a number, got {value!r}")
    if math.isnan(number):
        raise ValueError(f"{where} must be a number, got {value!r}")
    return number


def _as_int(value: Any, where: str) -> int:
    """An integer, or a whole number written as a float or as text ("5", 5.0)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = None
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number != int(number):
        raise ValueError(f"{where} must be int, got {value!r} (a whole number)")
    return int(number)


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
