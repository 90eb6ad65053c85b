"""Wire the stages together: data -> IDs -> prompt examples -> model -> training -> Recommender.

`fit(config)` is what `p5rec demo`, `p5rec train` and `scripts/finetune.py` run. Each stage stays
usable on its own; this module only passes one stage's output to the next.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from p5rec.api import Recommender
from p5rec.config import RunConfig
from p5rec.data.split import Splits
from p5rec.data.synthetic import generate
from p5rec.data.tables import RecData
from p5rec.ids import ItemIndex, UserIndex
from p5rec.modeling.backbone import build_scratch_model, load_pretrained, train_tokenizer
from p5rec.modeling.lora import apply_lora
from p5rec.templates.load import TemplateSet
from p5rec.templates.render import ExampleBuilder
from p5rec.training.trainer import TrainResult, train


@dataclass
class Prepared:
    """The data side of a run: tables, splits, ID indexes, templates and the example builder."""

    data: RecData
    splits: Splits
    items: ItemIndex
    users: UserIndex
    templates: TemplateSet
    builder: ExampleBuilder


@dataclass
class FitResult:
    recommender: Recommender
    prepared: Prepared
    train: TrainResult


def load_data(config: RunConfig) -> RecData:
    """The built-in synthetic data, or a dataset prepared by `p5rec data prepare`."""
    if config.data.source == "synthetic":
        return generate(config.data.synthetic)
    return RecData.load_from_disk(config.data.source)


def prepare(config: RunConfig, data: RecData | None = None) -> Prepared:
    """Splits, leak-free ID indexes (built on training sequences only) and the example builder."""
    data = data if data is not None else load_data(config)
    splits = Splits.from_data(data, seed=config.data.split_seed)
    items = ItemIndex.from_data(config.ids, data, splits.train_sequences())
    users = UserIndex.build(data.user_ids, representation=config.ids.representation)
    templates = TemplateSet.load(*config.prompts)
    builder = ExampleBuilder(
        data,
        splits,
        dict(zip(items.raw_ids(), items.id_strings())),
        dict(zip(users.raw_ids(), users.id_strings())),
        templates,
        config.examples,
    )
    return Prepared(data, splits, items, users, templates, builder)


def build_model(config: RunConfig, prepared: Prepared):
    """A scratch preset with a tokenizer trained on this data, or a pretrained checkpoint.

    ID tokens (representation "tokens") are added to the vocabulary; under LoRA their embeddings
    train as peft trainable tokens.
    """
    new_tokens = prepared.items.new_tokens() + prepared.users.new_tokens()
    if config.model.is_preset:
        rng = np.random.default_rng(config.train.seed)
        corpus = [f"{e.input} {e.target}" for e in prepared.builder.train_examples(rng)]
        corpus += prepared.items.id_strings() + prepared.users.id_strings()
        tokenizer = train_tokenizer(corpus, config.model.vocab_size, user_symbols=new_tokens)
        model = build_scratch_model(config.model, tokenizer, seed=config.train.seed)
        new_ids: list[int] = []
    else:
        model, tokenizer = load_pretrained(config.model.backbone)
        added = tokenizer.add_tokens(new_tokens) if new_tokens else 0
        if added:
            model.resize_token_embeddings(len(tokenizer))
        new_ids = tokenizer.convert_tokens_to_ids(new_tokens) if added else []
    if config.finetune == "lora":
        model = apply_lora(model, config.lora, trainable_token_ids=new_ids)
    return model, tokenizer


def fit(config: RunConfig, data: RecData | None = None, progress: bool = True) -> FitResult:
    """Prepare the data, build the model, train it, and return a ready `Recommender`."""
    prepared = prepare(config, data)
    model, tokenizer = build_model(config, prepared)
    result = train(model, tokenizer, prepared.builder, config.train, config.model, progress=progress)
    return FitResult(make_recommender(config, prepared, model, tokenizer), prepared, result)


def make_recommender(config: RunConfig, prepared: Prepared, model, tokenizer) -> Recommender:
    """Bundle a trained model with the catalog, indexes, histories and templates it was trained with."""
    return Recommender(
        model,
        tokenizer,
        prepared.items,
        prepared.users,
        prepared.data.catalog(),
        prepared.splits.sequences,
        prepared.templates,
        config.to_dict(),
    )
