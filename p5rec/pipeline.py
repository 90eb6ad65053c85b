"""Wire the stages together: data -> IDs -> prompt examples -> model -> training -> Recommender.

`fit(config)` is what `p5rec demo`, `p5rec train` and `scripts/finetune.py` run. Each stage stays
usable on its own; this module only passes one stage's output to the next.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from p5rec.api import Recommender, predictor_for
from p5rec.config import RunConfig
from p5rec.data.split import Splits
from p5rec.data.synthetic import generate
from p5rec.data.tables import RecData
from p5rec.decoding.consensus import FIELDS as RULE_FIELDS
from p5rec.decoding.consensus import ChoiceRule
from p5rec.decoding.rating import RatingTilt
from p5rec.evaluation.metrics import TextScores
from p5rec.evaluation.selection import simplest_within_one_se
from p5rec.ids import ItemIndex, UserIndex
from p5rec.model_dir import check_model_dir
from p5rec.modeling.backbone import (
    add_id_tokens,
    add_id_tokens_to_tokenizer,
    build_scratch_model,
    is_encoder_decoder,
    load_pretrained,
    train_tokenizer,
)
from p5rec.modeling.lora import apply_lora
from p5rec.recipe import resolve
from p5rec.templates.load import TemplateSet
from p5rec.templates.render import ExampleBuilder
from p5rec.templates.tasks import RATING_VALUES, TASKS
from p5rec.training.checkpoint import resolve_resume
from p5rec.training.copy_prior import WEIGHT_GRID, fit_copy_priors
from p5rec.training.mixture import MixedExamples
from p5rec.training.phases import (
    FIRST_TASK,
    first_phase,
    first_seconds_logged,
    first_teacher,
    only_tasks,
    resumed_phase,
    saved_teacher,
    second_phase,
    trains_others,
    writes_text,
)
from p5rec.training.rating_prior import choose_tilt
from p5rec.training.trainer import TrainResult, train

DOMAIN_TAGS = "abcdefghijklmnopqrstuvwxyz"  # multi-domain: ID prefix of the k-th dataset ("a_item_12")
TOKENIZER_SAMPLE = 5_000  # prompts the text tokenizer is trained on: plenty for a few thousand pieces
COPY_VALID_EXAMPLES = 200  # valid examples per text task that choose the copy prior's weight
RATING_VALID_EXAMPLES = 2_000  # valid prompts per rating task (all seen templates) that fit the rating prior
CHOICE_VALID_EXAMPLES = 500  # valid prompts per text task that decide between writing and choosing, and the rule
# The rules tried for choosing a text answer among retrieved ones (`p5rec.decoding.consensus`), each
# number of a ChoiceRule: the temperature of the model's weights (0: the candidates alike, the model
# not read), the weight of the share of a candidate's words found in the answer's source (a summary's
# review, an explanation's feature), the power of the candidates' training counts, and the weight of
# the brevity factor. Measured per value: docs/benchmarks.md ("Counts and length in the choice").
CHOICE_GRID = {
    "temperature": (0.0, 0.5, 1.0, 2.0),
    "relevance": (0.0, 0.25, 0.5, 1.0),
    "frequency": (0.0, 1.0),
    "brevity": (0.0, 0.1, 0.3),
}
CHOICE_TASKS = ("explanation", "review_summary")  # the text tasks whose answers may be chosen
ID_TOKEN = re.compile(r"<[A-Za-z_]+\d+>")  # the form of every ID token (`p5rec.ids.index.render_id`)


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
    domains: dict[str, Recommender] = field(default_factory=dict)  # multi-domain: tag -> its Recommender
    first: TrainResult | None = None  # the next-item-only phase (`train.sequential_first`), when it ran
    copy_weights: dict[str, float] = field(default_factory=dict)  # text task -> the copy prior's weight
    rating_prior: dict[str, RatingTilt] = field(default_factory=dict)  # rating task -> how answers are centred
    choice: dict[str, ChoiceRule] = field(default_factory=dict)  # text task -> how its answers are chosen

    def describe_copy(self) -> str:
        """One line on the copy prior's weights (empty when no text task has one)."""
        return describe_copy(self.recommender.config, self.copy_weights)

    def describe_rating(self) -> str:
        """One line on the rating prior's weights (empty when no rating task has one)."""
        return describe_rating(self.recommender.config, self.rating_prior)

    def describe_choice(self) -> str:
        """One line on the text tasks answered by a choice among retrieved texts (empty when none)."""
        return describe_choice(self.recommender.config, self.choice)


@dataclass
class ReadOut:
    """How a trained model's answers are read, chosen after training and saved with it: the copy
    prior per text task (and its weights), the rating prior, and the text tasks answered by a choice
    among retrieved texts (task -> rule)."""

    copy_prior: dict[str, torch.Tensor] = field(default_factory=dict)
    copy_weights: dict[str, float] = field(default_factory=dict)
    rating_prior: dict[str, RatingTilt] = field(default_factory=dict)
    choice: dict[str, ChoiceRule] = field(default_factory=dict)

    def describe(self, config: RunConfig) -> list[str]:
        """The lines `p5rec train` prints about it (those with something to say)."""
        lines = (
            describe_copy(config, self.copy_weights),
            describe_rating(config, self.rating_prior),
            describe_choice(config, self.choice),
        )
        return [line for line in lines if line]


def describe_copy(config: RunConfig, weights: dict[str, float]) -> str:
    """One line on the copy prior's weight per text task (empty without one), as `p5rec train` prints it."""
    if not weights:
        return ""
    chosen = ", ".join(f"{t} {w:g}" for t, w in sorted(weights.items()))
    given = config.model.copy_prior is not None
    return f"copy prior weight per text task ({'given' if given else 'chosen on valid'}): {chosen}"


def describe_rating(config: RunConfig, tilts: dict[str, RatingTilt]) -> str:
    """One line on the rating prior's weight per rating task (empty without one)."""
    if not tilts:
        return ""
    chosen = ", ".join(f"{t} {how.weight:g}" for t, how in sorted(tilts.items()))
    given = config.model.rating_prior_weight is not None
    return (
        "ratings centred on the damped user and item averages; weight of the model's own lean "
        f"({'given' if given else 'chosen on valid'}): {chosen}"
    )


def describe_choice(config: RunConfig, choice: dict[str, ChoiceRule]) -> str:
    """One line on the text tasks whose answers are chosen among retrieved texts (empty without one)."""
    if not choice:
        return ""
    chosen = ", ".join(
        f"{t} ({', '.join(f'{f} {getattr(r, f):g}' for f in RULE_FIELDS)})" for t, r in sorted(choice.items())
    )
    how = "given" if _given_rule(config) else "chosen on valid"
    return f"answers chosen among retrieved training texts ({how}): {chosen}"


def load_data(config: RunConfig, source: str | None = None) -> RecData:
    """The built-in synthetic data, or a dataset prepared by `p5rec data prepare` (default `data.source`)."""
    source = source or config.data.source
    if source == "synthetic":
        return generate(config.data.synthetic)
    return RecData.load_from_disk(source)


def check_paths(config: RunConfig) -> None:
    """Fail before any work when a data source, prompt folder or resume checkpoint does not exist, or the
    tracker of `train.report_to` is not installed."""
    named = [("data.source", config.data.source)] if not config.data.sources else []
    named += [(f"data.sources[{k}]", s) for k, s in enumerate(config.data.sources)]
    for key, source in named:
        if source != "synthetic" and not Path(source).is_dir():
            raise FileNotFoundError(
                f"`{key}` ({source!r}) is not a folder: give 'synthetic' or a dataset written by `p5rec data prepare`"
            )
    for k, folder in enumerate(config.prompts):
        if not Path(folder).exists():
            raise FileNotFoundError(f"`prompts[{k}]` ({folder!r}) does not exist")
    if config.train.resume_from:  # "latest" may be the first phase's newest checkpoint (next item first)
        where = first_phase(config.train, resume=True) if resumed_phase(config.train) == "first" else config.train
        resolve_resume(where.resume_from, where.output_dir)
    config.train.check_installed()
    outputs = [config.output_dir]
    if config.data.sources:
        outputs = [str(Path(config.output_dir) / DOMAIN_TAGS[k]) for k in range(len(config.data.sources))]
    for where in outputs:
        check_model_dir(where, "output_dir")


def prepare(
    config: RunConfig,
    data: RecData | None = None,
    tag: str = "",
    *,
    items: ItemIndex | None = None,
    users: UserIndex | None = None,
    templates: TemplateSet | None = None,
) -> Prepared:
    """Splits, leak-free ID indexes (built on training sequences only) and the example builder.

    Args:
        config: the run's settings (data source, split seed, ID scheme, prompt folders, examples).
        data: the loaded data (default: `load_data(config)`).
        tag: namespaces item and user IDs ("a" -> "a_item_12", "a_user_3") for multi-domain runs.
        items, users, templates: a trained model's own indexes and templates (`Recommender.items`,
            ...), to rebuild the examples it was evaluated on; built from `config` when None.
    """
    data = data if data is not None else load_data(config)
    splits = Splits.from_data(data, seed=config.data.split_seed)
    if items is None:
        ids = dataclasses.replace(config.ids, prefix=f"{tag}_{config.ids.prefix}") if tag else config.ids
        items = ItemIndex.from_data(ids, data, splits.train_sequences())
    if users is None:
        prefix = f"{tag}_user_" if tag else "user_"
        users = UserIndex.build(data.user_ids, representation=config.ids.users, prefix=prefix)
    templates = templates if templates is not None else TemplateSet.load(*config.prompts)
    builder = ExampleBuilder(data, splits, items, users, templates, config.examples)
    return Prepared(data, splits, items, users, templates, builder)


def prepare_domains(config: RunConfig, datasets: Sequence[RecData] | None = None) -> list[Prepared]:
    """One `Prepared` per dataset of `data.sources`, IDs prefixed "a_", "b_", ...; else `[prepare(config)]`.

    `datasets`: the loaded data (`load_datasets(config)`), when the caller already has it.
    """
    datasets = list(datasets) if datasets is not None else load_datasets(config)
    if not config.data.sources:
        return [prepare(config, datasets[0])]
    if config.ids.hierarchical and config.ids.representation == "tokens":
        raise ValueError(
            "`data.sources` with hierarchical token IDs would share level tokens (<a_3>) across datasets; "
            "use `ids.representation: text` or a flat `ids.scheme`"
        )
    return [prepare(config, d, tag=DOMAIN_TAGS[k]) for k, d in enumerate(datasets)]


def load_datasets(config: RunConfig) -> list[RecData]:
    """Every dataset of the run: `data.sources` in order, else the one `data.source`."""
    return [load_data(config, src) for src in config.data.sources] if config.data.sources else [load_data(config)]


def resolve_and_prepare(config: RunConfig, data: RecData | None = None) -> tuple[RunConfig, list[Prepared]]:
    """Load the data, fill the recipe's "auto" settings from it (`p5rec.recipe.resolve`), then prepare
    every dataset with the resolved config. Returns the resolved config and the prepared datasets."""
    datasets = [data] if data is not None else load_datasets(config)
    config = resolve(config, datasets)
    domains = [prepare(config, data)] if data is not None else prepare_domains(config, datasets)
    return config, domains


def build_model(config: RunConfig, prepared: Prepared | Sequence[Prepared]):
    """A scratch preset with a tokenizer trained on this data (all datasets of a multi-domain run), or
    a pretrained checkpoint.

    ID tokens (representation "tokens") are added to the vocabulary after the text pieces are
    learned, from a sample of one epoch's prompts with the IDs taken out: the text needs a few
    thousand sentences, and the catalog adds its tokens without retraining. Under LoRA their
    embeddings train as peft trainable tokens.
    """
    domains = [prepared] if isinstance(prepared, Prepared) else list(prepared)
    new_tokens = [t for p in domains for t in p.items.new_tokens() + p.users.new_tokens()]
    if config.model.is_auto:
        raise ValueError("`model.backbone` is 'auto': resolve the config from the data first (`p5rec.recipe.resolve`)")
    if config.model.is_preset:
        rng = np.random.default_rng(config.train.seed)
        share = -(-TOKENIZER_SAMPLE // len(domains))  # the text sample, split over the datasets
        corpus = [f"{e.input} {e.target}" for p in domains for e in p.builder.train_examples(rng, limit=share)]
        if new_tokens:  # learn the text only; ID tokens ("<item_12>", "<a_3>") come on top, whole
            corpus = [ID_TOKEN.sub(" ", line) for line in corpus]
        added = set(new_tokens)
        corpus += [s for p in domains for s in p.items.id_strings() + p.users.id_strings() if s not in added]
        tokenizer = train_tokenizer(corpus, config.model.vocab_size)
        new_ids = add_id_tokens_to_tokenizer(tokenizer, new_tokens)
        model = build_scratch_model(config.model, tokenizer, seed=config.train.seed)
        if config.model.item_init == "reviews":
            for p in domains:
                init_from_reviews(model, tokenizer, p, config.train.seed)
    else:
        model, tokenizer = load_pretrained(config.model.backbone)
        new_ids = add_id_tokens(model, tokenizer, new_tokens)
    if config.finetune == "lora":
        model = apply_lora(model, config.lora, trainable_token_ids=new_ids)
    return model, tokenizer


def init_from_reviews(model, tokenizer, prepared: Prepared, seed: int = 0) -> int:
    """Set the embedding of each item token whose item has training reviews to its review vector
    (`p5rec.data.review_vectors`) at the mean norm of the item rows; returns how many were set (0
    without review text, or when items are not one token each)."""
    from p5rec.data.review_vectors import review_vectors

    items = prepared.items
    if items.config.representation != "tokens" or items.config.hierarchical:
        return 0
    weight = model.get_input_embeddings().weight
    vectors = review_vectors(prepared.data, prepared.splits, weight.shape[1], seed)
    if not vectors:
        return 0
    ids = tokenizer.convert_tokens_to_ids([items.id_of(raw) for raw in vectors])
    with torch.no_grad():
        every = tokenizer.convert_tokens_to_ids(items.id_strings())
        scale = weight[every].norm(dim=1).mean()
        weight[ids] = torch.tensor(np.stack(list(vectors.values())), dtype=weight.dtype) * scale
    return len(ids)


def fit(
    config: RunConfig,
    data: RecData | None = None,
    progress: bool = True,
    on_step: Callable[[int, dict[str, Any]], None] | None = None,
) -> FitResult:
    """Prepare the data (every dataset of `data.sources`), build the model, train it (validating when
    `config.validation` is set), and return a ready `Recommender` (one per dataset in `domains`).

    With `train.sequential_first` the next-item task first trains alone to early stopping and every
    task then trains from its best weights (`training.phases`); `FitResult.first` holds that phase's
    outcome. `on_step(step, loop_state)` runs after each optimizer step of either phase (custom
    logging, tests).
    """
    if data is None:
        check_paths(config)
    config, domains = resolve_and_prepare(config, data)
    model, tokenizer = build_model(config, domains)
    builder = domains[0].builder if len(domains) == 1 else MixedExamples([p.builder for p in domains])
    validate = make_validator(config, domains, tokenizer)
    result, first = train_phases(
        config, model, tokenizer, builder, validate, progress, on_step, item_tokens=item_token_ids(tokenizer, domains)
    )
    read = read_out(config, model, tokenizer, builder, domains[0])
    recs = [make_recommender(config, p, model, tokenizer, read) for p in domains]
    tagged = dict(zip(DOMAIN_TAGS, recs)) if config.data.sources and data is None else {}
    return FitResult(recs[0], domains[0], result, tagged, first, read.copy_weights, read.rating_prior, read.choice)


def read_out(config: RunConfig, model, tokenizer, builder, prepared: Prepared) -> ReadOut:
    """What a trained model's answers are read with, chosen after training: the weighted copy prior
    per text task and its weights (:func:`copy_prior`), the rating prior (:func:`rating_prior`), and
    which text tasks' answers are chosen among retrieved ones (:func:`answer_choice`)."""
    prior, weights = copy_prior(config, model, tokenizer, builder, prepared)
    tilts = rating_prior(config, model, tokenizer, prepared)
    choice = answer_choice(config, model, tokenizer, prepared, prior)
    return ReadOut(prior, weights, tilts, choice)


def copy_prior(
    config: RunConfig, model, tokenizer, builder, prepared: Prepared
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """The weighted copy prior per text task of a trained decoder-only model, and the weights.

    The log-odds come from one epoch of the training examples (`p5rec.training.copy_prior`); the
    weight is `model.copy_prior`, or with None the one of `WEIGHT_GRID` whose answers score the best
    ROUGE-1 on up to `COPY_VALID_EXAMPLES` valid examples of the task's first seen template (ties:
    the smaller weight; 0 leaves the answers as trained). Nothing without text tasks, for an
    encoder-decoder, or with None and no validation.
    """
    given = config.model.copy_prior
    if given == 0 or is_encoder_decoder(model) or not writes_text(builder):
        return {}, {}
    if given is None and config.validation is None:
        return {}, {}
    priors = fit_copy_priors(builder, tokenizer, config.train.seed)
    if given is not None:
        weights = dict.fromkeys(priors, float(given))
    else:
        from p5rec.evaluation.metrics import rouge

        predictor = predictor_for(model, tokenizer, prepared.items, config)
        weights = {}
        for task, log_odds in priors.items():
            seen = prepared.builder.usable_templates(task, "seen")
            examples = (
                prepared.builder.eval_examples(
                    task, "valid", np.random.default_rng(config.train.seed), [seen[0].id], COPY_VALID_EXAMPLES
                )
                if seen
                else []
            )
            if not examples:
                continue
            prompts, refs = [e.input for e in examples], [e.target for e in examples]
            score = {w: rouge(refs, predictor.write(prompts, copy_prior=w * log_odds))["rouge_1"] for w in WEIGHT_GRID}
            weights[task] = max(WEIGHT_GRID, key=lambda w: (score[w], -w))
    return {t: w * priors[t] for t, w in weights.items() if w > 0}, weights


def rating_prior(config: RunConfig, model, tokenizer, prepared: Prepared) -> dict[str, RatingTilt]:
    """How each trained rating task's answers are centred on the baseline rating (`model.rating_prior`).

    The model's distributions on up to `RATING_VALID_EXAMPLES` valid prompts, shared among the task's
    seen templates, give the tilt's base and, when `model.rating_prior_weight` is None, choose the weight
    (`p5rec.training.rating_prior`). Nothing when the prior is off, without ratings in the training
    reviews, or with no weight given and no validation.
    """
    given = config.model.rating_prior_weight
    builder = prepared.builder
    if not config.model.rating_prior or (given is None and config.validation is None):
        return {}
    means = builder.rating_means()
    tasks = [t for t, spec in TASKS.items() if spec.kind == "rating" and builder.trains(t)]
    if means is None or not tasks:
        return {}
    predictor = predictor_for(model, tokenizer, prepared.items, config)
    values = [float(v) for v in RATING_VALUES]
    tilts = {}
    for task in tasks:
        # Every seen template, so that a lean which is only one template's offset does not pass for
        # knowledge of the pair (it moved held-out templates' RMSE from .29 to .68 on Gift Cards).
        seen = [t.id for t in builder.usable_templates(task, "seen")]
        rng = np.random.default_rng(config.train.seed)
        examples = builder.eval_examples(task, "valid", rng, seen, max(1, RATING_VALID_EXAMPLES // len(seen)))
        if not examples:
            continue
        dist = torch.tensor(predictor.rating_distribution([e.input for e in examples]))
        truths = [e.meta["rating"] for e in examples]
        baselines = [means.baseline(e.user, e.item) for e in examples]
        tilts[task], _ = choose_tilt(dist, values, truths, baselines, given)
    return tilts


def answer_choice(
    config: RunConfig, model, tokenizer, prepared: Prepared, prior: dict[str, torch.Tensor] | None = None
) -> dict[str, ChoiceRule]:
    """Which text tasks' answers are chosen among retrieved training texts, and by what rule.

    Per task of `CHOICE_TASKS` that trains and has candidates (`ExampleBuilder.answer_candidates`):
    writing (with the copy prior `prior`) or choosing by a rule of `choice_rules`, whichever
    :func:`pick_readout` keeps by BLEU + ROUGE-1 + ROUGE-L on up to `CHOICE_VALID_EXAMPLES` valid
    prompts of the task's first seen template (the simplest within one standard error of the best).
    Any of the rule's numbers given in the config (`model.choice_temperature`, ...): always chosen,
    with the given values (the others chosen on valid, or 0 without validation). Nothing when
    `model.choose_answers` is off.
    """
    m, builder = config.model, prepared.builder
    if not m.choose_answers:
        return {}
    given = _given_rule(config)
    rules = choice_rules(config)
    predictor = predictor_for(model, tokenizer, prepared.items, config, copy_prior=prior)
    out = {}
    for task in CHOICE_TASKS:
        seen = builder.usable_templates(task, "seen")
        if not builder.trains(task) or not seen or not _has_candidates(builder, task):
            continue
        rng = np.random.default_rng(config.train.seed)
        examples = builder.eval_examples(task, "valid", rng, [seen[0].id], CHOICE_VALID_EXAMPLES)
        if config.validation is None or not examples:
            if given:  # no valid split to choose the others on: 0
                out[task] = ChoiceRule(**{k: v or 0.0 for k, v in given.items()})
            continue
        scored = choice_readouts(predictor, builder, examples, rules, write=not given)
        best = pick_readout(scored)
        if best is not None:
            out[task] = best
    return out


def _given_rule(config: RunConfig) -> dict[str, float | None]:
    """The choice rule's numbers as the config gives them (None: to be chosen); {} when none is given."""
    values = {f: getattr(config.model, f"choice_{f}") for f in RULE_FIELDS}
    return values if any(v is not None for v in values.values()) else {}


def choice_rules(config: RunConfig | None = None) -> list[ChoiceRule]:
    """The rules the choice after training tries: `CHOICE_GRID`, with each number `config` gives fixed."""
    given = _given_rule(config) if config is not None else {}
    axes = [(given[f],) if given.get(f) is not None else CHOICE_GRID[f] for f in RULE_FIELDS]
    return [ChoiceRule(*values) for values in itertools.product(*axes)]


def _has_candidates(builder, task: str) -> bool:
    """Whether `task`'s answers have training texts to be chosen from."""
    return bool(builder.review_titles()) if task == "review_summary" else builder.retrieval() is not None


def pick_readout(scored: dict[ChoiceRule | None, TextScores]) -> ChoiceRule | None:
    """The read-out of :func:`choice_readouts` to keep: a rule, or None to write. The simplest whose
    valid BLEU + ROUGE-1 + ROUGE-L is within one standard error of the best's
    (`p5rec.evaluation.selection`): the rules with fewer numbers above 0 first, then the smaller
    numbers (temperature first), writing last (free text varies most: within one standard error of
    the best on 109 valid prompts, it scored 12 points below it on test). The highest score alone
    kept rules that won by chance on a few hundred valid examples (docs/benchmarks.md, "One
    standard error")."""

    def simplicity(r: ChoiceRule | None) -> tuple:
        numbers = [getattr(r, f) for f in RULE_FIELDS] if r else [0.0] * len(RULE_FIELDS)
        return (r is None, sum(v > 0 for v in numbers), *numbers)

    return simplest_within_one_se(scored, simplicity)


def choice_readouts(
    predictor, builder, examples, rules: Sequence[ChoiceRule] | None = None, write: bool = True
) -> dict[ChoiceRule | None, TextScores]:
    """The per-example text scores (BLEU-4 for explanations, BLEU-2 for summaries, ROUGE) of the answers
    written for `examples` (key None, when `write`) and of those chosen among their candidates by each
    rule (default: every rule of `CHOICE_GRID`; the model scores the candidates once)."""
    from p5rec.decoding.consensus import consensus, texts_and_counts

    if rules is None:
        rules = choice_rules()
    task = examples[0].task
    max_n = 4 if task == "explanation" else 2
    prompts, refs = [e.input for e in examples], [e.target for e in examples]
    candidates = [texts_and_counts(builder.answer_candidates(e)) for e in examples]
    sources = [builder.answer_source(e) for e in examples]
    out = {None: TextScores(refs, predictor.write(prompts, task=task), max_n=max_n)} if write else {}
    read = any(r.temperature for r in rules)
    scores = predictor.candidate_scores(prompts, [t for t, _ in candidates]) if read else [None] * len(prompts)
    for rule in rules:
        hyps = [t[consensus(t, s, rule, src, n)] for src, (t, n), s in zip(sources, candidates, scores)]
        out[rule] = TextScores(refs, hyps, max_n=max_n)
    return out


def item_token_ids(tokenizer, domains: Sequence[Prepared]) -> list[int]:
    """The token ids of every catalog item when each item is one token (flat `tokens` IDs), else []:
    what a sampled softmax over items (`train.item_negatives`) draws from."""
    tokens = [
        t
        for p in domains
        if p.items.config.representation == "tokens" and not p.items.config.hierarchical
        for t in p.items.new_tokens()
    ]
    return tokenizer.convert_tokens_to_ids(tokens) if tokens else []


def train_phases(
    config: RunConfig,
    model,
    tokenizer,
    builder,
    validate: Callable | None,
    progress: bool = True,
    on_step: Callable[[int, dict[str, Any]], None] | None = None,
    item_tokens: Sequence[int] | None = None,
) -> tuple[TrainResult, TrainResult | None]:
    """Train `model` in place as `config.train` says: with `sequential_first`, the next-item task alone
    to early stopping and then every task from its best weights; returns (the every-task run, the
    first phase or None). The first phase needs validation (it ends at early stopping) and another task
    to come after it. A run that resumes continues the phase its checkpoint is from; when that is the
    every-task phase, the first one is not run again (and None is returned for it). `item_tokens`
    (:func:`item_token_ids`) enable `train.item_negatives`."""
    settings, first = config.train, None
    hooks = {"progress": progress, "validate": validate, "on_step": on_step, "item_tokens": item_tokens}
    if settings.sequential_first and validate is not None and trains_others(builder):
        phase, text = resumed_phase(settings), writes_text(builder)
        if phase == "second":
            hooks["teacher"] = saved_teacher(model, settings)
            settings = second_phase(settings, first_seconds_logged(settings), resume=True, text_tasks=text)
        else:
            alone, first_settings = only_tasks(builder, {FIRST_TASK}), first_phase(settings, resume=phase == "first")
            first = train(model, tokenizer, alone, first_settings, config.model, **hooks)
            hooks["teacher"] = first_teacher(model, settings)
            settings = second_phase(settings, first.seconds, text_tasks=text)
    return train(model, tokenizer, builder, settings, config.model, **hooks), first


def make_validator(
    config: RunConfig, domains: Sequence[Prepared], tokenizer
) -> Callable[[Any], dict[str, float]] | None:
    """model -> {"task/metric": mean over datasets} on the valid split, or None without `config.validation`.

    Only seen templates count, and the split is always "valid", whatever `validation.split` says:
    choosing the model on the test split would leak it.
    """
    if config.validation is None:
        return None
    from p5rec.evaluation.evaluate import evaluate

    cfg = dataclasses.replace(config.validation, split="valid")

    predictors: list = []  # one per domain, built once per model: the catalog trie costs ~0.3 s (Beauty)

    def validate(model) -> dict[str, float]:
        if not predictors or predictors[0].model is not model:
            predictors[:] = [predictor_for(model, tokenizer, p.items, config) for p in domains]
        model.eval()  # the trainer puts it back in train mode after each validation
        per_domain = []
        for predictor, p in zip(predictors, domains):
            res = evaluate(predictor, p.builder, cfg, progress=False)
            per_domain.append({f"{t}/{m}": v for t in cfg.tasks for m, v in res.by_task(t, "seen").items()})
        keys = [k for k in per_domain[0] if all(k in d for d in per_domain) and not k.endswith("examples_per_s")]
        return {k: float(np.mean([d[k] for d in per_domain])) for k in keys}

    return validate


def make_recommender(
    config: RunConfig,
    prepared: Prepared,
    model,
    tokenizer,
    read: ReadOut | None = None,
) -> Recommender:
    """Bundle a trained model with the catalog, indexes, histories and templates it was trained with,
    and how its answers are read (`read`: the copy prior its text answers are written with, the
    rating prior its ratings are centred with, the tasks answered by a choice among retrieved texts)."""
    read = read or ReadOut()
    builder = prepared.builder
    # A dataset of a mixture may lack the candidates another one has: its tasks are then written.
    choice = {t: r for t, r in read.choice.items() if _has_candidates(builder, t)}
    table = (
        builder.retrieval() if "explanation" in choice or _shows(prepared.templates, "similar_explanation") else None
    )
    return Recommender(
        model,
        tokenizer,
        prepared.items,
        prepared.users,
        prepared.data.catalog(),
        prepared.splits.sequences,
        prepared.templates,
        config,
        ratings=prepared.data.ratings(),
        copy_prior=read.copy_prior,
        rating_prior=read.rating_prior,
        choice=choice,
        # Kept only when used: what fills `similar_explanation` and gives the candidates in the API.
        explanations=table,
        review_titles=builder.review_titles() if "review_summary" in choice else None,
    )


def _shows(templates: TemplateSet, variable: str) -> bool:
    """Whether any template of the set fills `variable`."""
    return any(variable in t.input_variables for t in templates)
