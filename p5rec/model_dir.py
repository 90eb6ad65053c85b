"""The model directory: what `Recommender.save_pretrained` writes and `from_pretrained` reads.

A directory holds everything needed to answer, under fixed names (as peft and transformers save
theirs): the weights or LoRA adapter (`model/`, and `base_model/` for LoRA over a scratch preset),
`tokenizer/`, the item and user indexes, the catalog, user histories, the prompt templates and
`p5rec_config.json` (format version, p5rec version, the run's config), and optionally the known
ratings (`ratings.json`), the copy prior of the text answers (`copy_prior.json`), how rating
answers are centred on the baseline rating (`rating_prior.json`), the retrieved training
explanations that `similar_explanation` prompts show and explanations are chosen from
(`explanations.json`), the training titles summaries are chosen from, each item's own and the most
frequent (`review_titles.json`) and the rule of each text task answered by a choice (`answer_choice.json`).
It is written atomically (`p5rec._atomic`), and read back small files first, each checked, so a
damaged file names itself before the weights load.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from p5rec import __version__
from p5rec._atomic import atomic_dir
from p5rec.config import RunConfig
from p5rec.data.retrieved_explanations import RetrievalExplainer
from p5rec.data.retrieved_titles import RetrievedTitles
from p5rec.decoding.consensus import FIELDS as RULE_FIELDS
from p5rec.decoding.consensus import ChoiceRule
from p5rec.decoding.rating import RatingTilt
from p5rec.ids import ItemIndex, UserIndex
from p5rec.templates.load import TemplateSet

FORMAT_VERSION = 1
CONFIG_FILE = "p5rec_config.json"
RATINGS_FILE = "ratings.json"
COPY_PRIOR_FILE = "copy_prior.json"
RATING_PRIOR_FILE = "rating_prior.json"
EXPLANATIONS_FILE = "explanations.json"
CHOICE_FILE = "answer_choice.json"
TITLES_FILE = "review_titles.json"
REQUIRED_FILES = (
    CONFIG_FILE,
    "tokenizer",
    "model",
    "item_index.json",
    "user_index.json",
    "catalog.jsonl",
    "histories.json",
    "prompts.yaml",
)
# A saved tokenizer folder: its config plus a vocabulary (tokenizer.json from transformers 5; the rest are the
# vocabulary files of tokenizers saved without one).
TOKENIZER_CONFIG = "tokenizer_config.json"
TOKENIZER_VOCABS = ("tokenizer.json", "spiece.model", "tokenizer.model", "sentencepiece.bpe.model", "vocab.json")


class ModelFiles(NamedTuple):
    """What a model directory holds, in `Recommender`'s argument order."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    items: ItemIndex
    users: UserIndex
    catalog: dict[str, dict[str, Any]]
    histories: dict[str, list[str]]
    templates: TemplateSet
    config: RunConfig
    ratings: dict[str, list[tuple[str, float]]]
    copy_prior: dict[str, torch.Tensor] | None = None
    rating_prior: dict[str, RatingTilt] | None = None
    explanations: RetrievalExplainer | None = None
    choice: dict[str, ChoiceRule] | None = None
    review_titles: RetrievedTitles | None = None


def write_model_dir(path: str | os.PathLike, files: ModelFiles) -> None:
    """Write the model directory atomically (a temp folder renamed into place); see :func:`check_model_dir`."""
    path = Path(path)
    check_model_dir(path)
    with atomic_dir(path) as tmp:
        is_peft = hasattr(files.model, "peft_config")
        # A LoRA adapter holds only the trained rows of added ID tokens, never whole embedding matrices.
        with _quiet_transformers():  # no "Writing model shards" bar from a library call
            files.model.save_pretrained(tmp / "model", **({"save_embedding_layers": False} if is_peft else {}))
        if is_peft and files.config.model.is_preset:
            # LoRA over a scratch preset: the random base weights are part of the model. Save them
            # without the injected LoRA layers (a copy, unloaded), or their names would not load back.
            copy.deepcopy(files.model).unload().save_pretrained(tmp / "base_model")
        files.tokenizer.save_pretrained(tmp / "tokenizer")
        files.items.save(tmp / "item_index.json")
        files.users.save(tmp / "user_index.json")
        with open(tmp / "catalog.jsonl", "w", encoding="utf-8") as f:
            for raw in files.items.raw_ids():
                f.write(json.dumps({"item_id": raw, **files.catalog.get(raw, {})}, ensure_ascii=False) + "\n")
        (tmp / "histories.json").write_text(json.dumps(files.histories))
        (tmp / RATINGS_FILE).write_text(json.dumps(files.ratings))
        if files.copy_prior:  # task -> {token id: amount}, the tokens that have one
            prior = {t: {str(i): v for i, v in enumerate(p.tolist()) if v} for t, p in files.copy_prior.items()}
            (tmp / COPY_PRIOR_FILE).write_text(json.dumps(prior))
        if files.rating_prior:  # task -> {"weight": w, "base": [p per rating value]}
            tilts = {t: {"weight": how.weight, "base": list(how.base)} for t, how in files.rating_prior.items()}
            (tmp / RATING_PRIOR_FILE).write_text(json.dumps(tilts))
        if files.explanations is not None:
            (tmp / EXPLANATIONS_FILE).write_text(json.dumps(files.explanations.to_dict(), ensure_ascii=False))
        if files.choice:  # text task -> the rule its answers are chosen among retrieved texts by
            rules = {t: dataclasses.asdict(r) for t, r in files.choice.items()}
            (tmp / CHOICE_FILE).write_text(json.dumps(rules))
        if files.review_titles is not None:  # the most frequent and each item's own, with their counts
            (tmp / TITLES_FILE).write_text(json.dumps(files.review_titles.to_dict(), ensure_ascii=False))
        files.templates.save(tmp / "prompts.yaml")
        meta = {
            "format_version": FORMAT_VERSION,
            "p5rec_version": __version__,
            "finetune": "lora" if is_peft else "full",
            "run_config": files.config.to_dict(),
        }
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2))


def read_model_dir(path: str | os.PathLike, device: str = "auto") -> ModelFiles:
    """Read and check a directory written by :func:`write_model_dir` (or a hub repo id holding one)."""
    path = _resolve(path)
    missing = [f for f in REQUIRED_FILES if not (path / f).exists()]
    tok = path / "tokenizer"
    if tok.is_dir():
        missing += [f"tokenizer/{TOKENIZER_CONFIG}"] if not (tok / TOKENIZER_CONFIG).is_file() else []
        if not any((tok / f).is_file() for f in TOKENIZER_VOCABS):
            missing.append(f"tokenizer/{TOKENIZER_VOCABS[0]}")
    if missing:
        raise FileNotFoundError(
            f"{path} is not a complete p5rec model directory: missing {missing}; copy the whole directory "
            "again, or write it with `Recommender.save_pretrained`"
        )
    # Everything small is read and checked before the weights load: a damaged file fails fast.
    meta = _read_meta(path / CONFIG_FILE)
    config = _read_run_config(meta, path / CONFIG_FILE)
    items = ItemIndex.load(path / "item_index.json")
    users = UserIndex.load(path / "user_index.json")
    catalog = _read_catalog(path / "catalog.jsonl")
    histories = _read_histories(path / "histories.json", items)
    # Optional: directories written before rating prompts showed the user's ratings have none.
    ratings = _read_ratings(path / RATINGS_FILE, items) if (path / RATINGS_FILE).exists() else {}
    templates = TemplateSet.load(path / "prompts.yaml", include_defaults=False)
    with _quiet_transformers():
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(tok)
        except Exception as e:  # noqa: BLE001 - tokenizers, sentencepiece and json each raise their own types
            raise ValueError(
                f"{tok}: the tokenizer could not be loaded ({type(e).__name__}: {e}); copy the folder again"
            ) from None
        model = _load_model(path, meta, len(tokenizer))
    dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    model.to(dev).eval()
    # Optional: only models whose text answers copy with a prior have one.
    prior = _read_copy_prior(path / COPY_PRIOR_FILE, len(tokenizer)) if (path / COPY_PRIOR_FILE).exists() else {}
    tilts = _read_rating_prior(path / RATING_PRIOR_FILE) if (path / RATING_PRIOR_FILE).exists() else {}
    explained = _read_explanations(path / EXPLANATIONS_FILE) if (path / EXPLANATIONS_FILE).exists() else None
    titles = _read_titles(path / TITLES_FILE) if (path / TITLES_FILE).exists() else None
    choice = _read_choice(path / CHOICE_FILE, explained, titles) if (path / CHOICE_FILE).exists() else {}
    return ModelFiles(
        model, tokenizer, items, users, catalog, histories, templates, config, ratings, prior, tilts, explained,
        choice, titles,
    )  # fmt: skip


def check_model_dir(path: str | os.PathLike, flag: str = "path") -> None:
    """Refuse to save a model over a folder that holds other files; call it before training to fail early.

    Saving replaces a model directory whole, so only a new path, an empty folder or a folder written
    by :meth:`Recommender.save_pretrained` (it holds ``p5rec_config.json``) may receive one.

    Args:
        path: where the model is to be saved.
        flag: the name the caller knows the path by, for the message (``output_dir``, ``--output``).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"`{flag}` ({str(path)!r}) is a file, not a folder: choose a new folder for the model")
    if not path.is_dir() or (path / CONFIG_FILE).is_file():
        return
    others = sorted(p.name for p in path.iterdir())
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise ValueError(
            f"`{flag}` ({str(path)!r}) is a folder that is not a p5rec model directory and is not empty ({shown}): "
            "saving would replace it whole; choose a new or empty folder"
        )


def _read_run_config(meta: dict[str, Any], file: Path) -> RunConfig:
    """The saved run's `RunConfig`; a key of the wrong type or value names the file, the key and the fix."""
    try:
        return RunConfig.from_dict(meta["run_config"], f"{file}: `run_config`")
    except ValueError as e:
        raise ValueError(f"{e}; restore the file, or save the model again with `Recommender.save_pretrained`") from None


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{file}: not a text file (byte {e.start} is not UTF-8): it is damaged; copy the model directory again"
        ) from None


def _read_json(file: Path) -> Any:
    try:
        return json.loads(_read_text(file))
    except json.JSONDecodeError as e:
        raise ValueError(f"{file}: not valid JSON ({e}); the file is damaged, copy the model directory again") from None


def _read_meta(file: Path) -> dict[str, Any]:
    meta = _read_json(file)
    if not isinstance(meta, dict):
        raise ValueError(f"{file}: expected a JSON object with `format_version` and `run_config`, got {meta!r:.80}")
    version = meta.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"{file}: `format_version` must be an integer, got {version!r}; restore the file")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{file.parent}: model format {version} is newer than this p5rec ({FORMAT_VERSION}); upgrade p5rec"
        )
    if meta.get("finetune", "full") not in ("full", "lora"):
        raise ValueError(f"{file}: `finetune` must be 'full' or 'lora', got {meta['finetune']!r}; restore the file")
    meta.setdefault("run_config", {})
    return meta


def _read_catalog(file: Path) -> dict[str, dict[str, Any]]:
    """raw item ID -> its catalog row, from a JSON-lines file; a damaged line is named with its number."""
    catalog: dict[str, dict[str, Any]] = {}
    for lineno, line in enumerate(_read_text(file).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{file}:{lineno}: not a JSON object ({e.msg}); the file is damaged, restore it") from None
        if not isinstance(row, dict) or not isinstance(row.get("item_id"), str):
            raise ValueError(
                f"{file}:{lineno}: expected an object with a string `item_id`, got {line[:80]!r}; restore the file"
            )
        catalog[row.pop("item_id")] = row
    return catalog


def _read_histories(file: Path, items: ItemIndex) -> dict[str, list[str]]:
    histories = _read_json(file)
    if not isinstance(histories, dict):
        raise ValueError(f"{file}: expected a JSON object user -> [item, ...], got {histories!r:.80}; restore the file")
    for user, hist in histories.items():
        if not isinstance(hist, list) or not all(isinstance(i, str) and i in items for i in hist):
            raise ValueError(
                f"{file}: `{user}` must map to a list of catalog item IDs, got {hist!r:.80}; restore the file"
            )
    return histories


def _read_ratings(file: Path, items: ItemIndex) -> dict[str, list[tuple[str, float]]]:
    ratings = _read_json(file)
    if not isinstance(ratings, dict):
        raise ValueError(
            f"{file}: expected a JSON object user -> [[item, stars], ...], got {ratings!r:.80}; restore the file"
        )
    out = {}
    for user, rated in ratings.items():
        ok = isinstance(rated, list) and all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and p[0] in items
            and isinstance(p[1], (int, float)) and not isinstance(p[1], bool) and 1 <= p[1] <= 5
            for p in rated
        )  # fmt: skip
        if not ok:
            raise ValueError(
                f"{file}: `{user}` must map to a list of [catalog item ID, stars 1-5], got {rated!r:.80}; "
                "restore the file"
            )
        out[user] = [(i, float(r)) for i, r in rated]
    return out


def _read_copy_prior(file: Path, vocab_size: int) -> dict[str, torch.Tensor]:
    from p5rec.templates.tasks import TASKS

    prior = _read_json(file)
    if not isinstance(prior, dict):
        raise ValueError(
            f"{file}: expected a JSON object task -> {{token id: amount}}, got {prior!r:.80}; restore the file"
        )
    out = {}
    for task, amounts in prior.items():
        ok = task in TASKS and isinstance(amounts, dict)
        vector = torch.zeros(vocab_size)
        for token, amount in amounts.items() if ok else ():
            if not (token.isdigit() and int(token) < vocab_size and isinstance(amount, (int, float))):
                ok = False
                break
            vector[int(token)] = float(amount)
        if not ok or not bool(torch.isfinite(vector).all()):
            raise ValueError(
                f"{file}: `{task}` must be a text task mapping token ids below {vocab_size} to numbers, "
                f"got {amounts!r:.80}; restore the file"
            )
        out[task] = vector
    return out


def _read_rating_prior(file: Path) -> dict[str, RatingTilt]:
    from p5rec.templates.tasks import RATING_VALUES, TASKS

    tilts = _read_json(file)
    if not isinstance(tilts, dict):
        raise ValueError(
            f'{file}: expected a JSON object task -> {{"weight": w, "base": [...]}}, got {tilts!r:.80}; '
            "restore the file"
        )
    out = {}
    for task, how in tilts.items():
        try:
            if task not in TASKS or TASKS[task].kind != "rating" or set(how) != {"weight", "base"}:
                raise ValueError("not a rating task with a weight and a base")
            if len(how["base"]) != len(RATING_VALUES):
                raise ValueError(f"the base needs {len(RATING_VALUES)} probabilities")
            out[task] = RatingTilt(how["weight"], tuple(how["base"]))
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"{file}: `{task}` must be a rating task with a weight >= 0 and {len(RATING_VALUES)} positive "
                f"probabilities as its base ({e}), got {how!r:.80}; restore the file"
            ) from None
    return out


def _read_explanations(file: Path) -> RetrievalExplainer:
    table = _read_json(file)
    try:
        return RetrievalExplainer.from_dict(table)
    except ValueError as e:
        raise ValueError(f"{file}: not a retrieved-explanation table ({e}); restore the file") from None


def _read_choice(
    file: Path, explained: RetrievalExplainer | None, titles: RetrievedTitles | None
) -> dict[str, ChoiceRule]:
    rules = _read_json(file)
    needs = {"explanation": (explained, EXPLANATIONS_FILE), "review_summary": (titles, TITLES_FILE)}
    if not isinstance(rules, dict):
        raise ValueError(f"{file}: expected a JSON object task -> rule, got {rules!r:.80}; restore the file")
    out = {}
    for task, rule in rules.items():
        try:
            # Models saved before the counts and brevity hold only the first two numbers (0 for the others).
            if task not in needs or not isinstance(rule, dict) or not {"temperature", "relevance"} <= set(rule):
                raise ValueError(f"not one of {sorted(needs)} with a temperature and a relevance")
            if set(rule) - set(RULE_FIELDS):
                raise ValueError(f"unknown numbers {sorted(set(rule) - set(RULE_FIELDS))}")
            out[task] = ChoiceRule(**rule)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"{file}: `{task}` must be a text task with numbers >= 0 among {list(RULE_FIELDS)} ({e}), "
                f"got {rule!r:.80}; restore the file"
            ) from None
        table, name = needs[task]
        if table is None:
            raise ValueError(f"{file}: {task} answers are chosen among retrieved texts but {name} is missing")
    return out


def _read_titles(file: Path) -> RetrievedTitles:
    """The title table; a list of titles (models saved before the items' own titles) is the most
    frequent alone, a bare title counted once."""
    table = _read_json(file)
    try:
        titles = RetrievedTitles.from_dict(table)
        if not titles:
            raise ValueError("no title")
    except ValueError as e:
        raise ValueError(f"{file}: not a table of training titles ({e}); restore the file") from None
    return titles


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' per-file "Loading weights" bars: a library load should print nothing."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def _resolve(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.exists():
        return p
    if isinstance(path, str) and path.count("/") == 1 and not path.startswith((".", "/")):
        try:  # a hub repo id: download the whole directory (needs internet)
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(path))
        except Exception as e:  # noqa: BLE001 - any hub failure means "not found" to the user
            raise FileNotFoundError(
                f"model {path!r} is neither a local directory nor a downloadable hub repo ({e})"
            ) from None
    raise FileNotFoundError(f"model directory {p} does not exist")


def _load_model(path: Path, meta: dict[str, Any], vocab_size: int | None = None) -> PreTrainedModel:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    try:
        if meta.get("finetune") == "lora":
            from p5rec.modeling.lora import load_lora

            base_dir = path / "base_model"
            return load_lora(path / "model", base_dir if base_dir.exists() else None, vocab_size)
        cfg = AutoConfig.from_pretrained(path / "model")
        auto = AutoModelForSeq2SeqLM if cfg.is_encoder_decoder else AutoModelForCausalLM
        return auto.from_pretrained(path / "model")
    except Exception as e:  # noqa: BLE001 - safetensors, torch and peft each raise their own types
        raise ValueError(f"{path / 'model'}: the model weights could not be loaded ({type(e).__name__}: {e})") from None
