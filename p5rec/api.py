"""`Recommender`: a trained p5rec model behind plain Python calls.

>>> rec = Recommender.from_pretrained("runs/demo-model")          # doctest: +SKIP
>>> rec.recommend(user="A2IBPI20UZIR0U", k=5).sentence           # doctest: +SKIP
'We recommend Acme Pro Strings 101, ... to A2IBPI20UZIR0U.'

The saved directory holds everything needed to answer: weights or adapter, tokenizer, item and
user indexes, the catalog, user histories, the prompt templates and the run config; its format,
writer and checked reader are `p5rec.model_dir`. Prompts are filled with the same
`prompt_variables` and templates the training examples were rendered with.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from p5rec.config import RunConfig
from p5rec.data.rating_means import RatingMeans
from p5rec.data.retrieved_explanations import RetrievalExplainer
from p5rec.data.retrieved_titles import RetrievedTitles
from p5rec.decoding.beams import beam_width
from p5rec.decoding.consensus import ChoiceRule
from p5rec.decoding.predictor import Predictor
from p5rec.decoding.rating import RatingTilt
from p5rec.ids import ItemIndex, UserIndex
from p5rec.model_dir import ModelFiles, check_model_dir, read_model_dir, write_model_dir
from p5rec.modeling.backbone import is_encoder_decoder
from p5rec.recipe import trains_history
from p5rec.templates.load import TemplateSet
from p5rec.templates.render import prompt_variables, rating_averages
from p5rec.templates.tasks import AVERAGE_VARIABLES, TASKS, format_rating
from p5rec.templates.template import PromptTemplate

# check_model_dir is re-exported: callers check an output folder before training (see p5rec.model_dir).
__all__ = ["NEW_USER", "RecommendedItem", "Recommendations", "Recommender", "check_model_dir"]

NEW_USER = "user_new"  # the ID string a cold-start user gets in prompts
# What a rating prompt may show besides the two IDs: the user's known ratings and the two averages.
_RATING_CONTEXT = frozenset({"user_ratings", *AVERAGE_VARIABLES})


def predictor_for(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    items: ItemIndex,
    config: RunConfig,
    batch_size: int = 32,
    copy_prior: Mapping[str, torch.Tensor] | None = None,
    rating_prior: Mapping[str, RatingTilt] | None = None,
    choice: Mapping[str, ChoiceRule] | None = None,
) -> Predictor:
    """The `Predictor` that reads `model` as it was trained with `config`; validation during training
    uses it too, so the weights kept are chosen by what evaluation and the API score. `copy_prior`:
    the weighted copy prior per text task chosen after training (`Recommender.copy_prior`);
    `rating_prior`: how each rating task's answers are centred (`Recommender.rating_prior`); `choice`:
    the text tasks answered by a choice among retrieved texts, and by what rule (`Recommender.choice`)."""
    return Predictor(
        model,
        tokenizer,
        items,
        max_input_length=config.model.max_input_length,
        max_target_length=config.model.max_target_length,
        batch_size=batch_size,
        # Trained with the history loss, the next-item distribution answers yes/no (AUC .66 vs .57, MI)
        # and orders candidates (direct choice HR@10 .3025 vs .2925, MI);
        # the config cannot tell a causal checkpoint from a seq2seq one (BART), the loaded model can.
        readout="next_item" if trains_history(config) and not is_encoder_decoder(model) else "answer",
        prompt_eos=config.model.prompt_eos,
        copy_bonus=config.model.copy_bonus,
        copy_prior=copy_prior,
        rating_prior=rating_prior,
        choice=choice,
    )


@dataclass
class RecommendedItem:
    """One recommendation: raw item ID, its ID string in prompts, title, score (log-probability), rank (1-based)."""

    item_id: str
    id_string: str
    title: str
    score: float
    rank: int


@dataclass
class Recommendations:
    """Ranked items plus a sentence a person can read."""

    user: str | None
    items: list[RecommendedItem] = field(default_factory=list)
    sentence: str = ""
    template: str = ""

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "items": [asdict(i) for i in self.items],
            "sentence": self.sentence,
            "template": self.template,
        }


class Recommender:
    """A trained model with its catalog, users and prompts.

    Build one with `p5rec.pipeline.fit` or load one with `Recommender.from_pretrained(path)`.

    Args:
        model: the (possibly peft-wrapped) language model.
        tokenizer: its tokenizer.
        items: raw item ID <-> ID string.
        users: raw user ID <-> ID string.
        catalog: raw item ID -> {"title": ..., "category": ...}.
        histories: raw user ID -> the user's known items in time order (used for prompts and to
            exclude seen items).
        templates: the prompt collection the model was trained with.
        config: the run's settings (`RunConfig`, default: its defaults): token limits and the
            history length are read from it, and it is saved with the model.
        ratings: raw user ID -> the user's known (raw item ID, stars), oldest first: rating prompts
            show them (`user_ratings`), as they showed the training ratings when the model learnt.
        copy_prior: text task -> `(vocab,)` amount added to the copy bonus of each prompt token when
            the model writes that task's answer (`p5rec.training.copy_prior`, weighted; chosen on the
            valid split after training; saved as `copy_prior.json`). Empty: none.
        rating_prior: rating task -> how its answers are centred on the baseline rating of the
            user and item (the damped averages of `ratings`; `p5rec.decoding.rating.tilt`, chosen on
            the valid split after training; saved as `rating_prior.json`). Empty: none.
        explanations: the retrieval baseline's table of training explanations (saved as
            `explanations.json`): explanation templates that show `similar_explanation` are filled
            from it, and explanations chosen among retrieved ones (`choice`) take their candidates from it.
            None: such templates are not used.
        review_titles: the training review titles (`RetrievedTitles`: each item's own and the most
            frequent, with their counts; or a list of the most frequent, bare or as (title, count)
            pairs; saved as `review_titles.json`): the candidates of review summaries chosen among
            retrieved ones (`choice`). None: not chosen.
        choice: text task -> the rule by which that task's answers are chosen among retrieved
            training texts instead of written (`p5rec.decoding.consensus.ChoiceRule`; chosen on the
            valid split after training; saved as `answer_choice.json`). Empty: written.
        batch_size: prompts per forward pass.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        items: ItemIndex,
        users: UserIndex,
        catalog: dict[str, dict[str, str]],
        histories: dict[str, list[str]],
        templates: TemplateSet,
        config: RunConfig | None = None,
        ratings: dict[str, list[tuple[str, float]]] | None = None,
        copy_prior: Mapping[str, torch.Tensor] | None = None,
        rating_prior: Mapping[str, RatingTilt] | None = None,
        explanations: RetrievalExplainer | None = None,
        choice: Mapping[str, ChoiceRule] | None = None,
        review_titles: RetrievedTitles | Sequence[str] | Sequence[tuple[str, int]] | None = None,
        batch_size: int = 32,
    ) -> None:
        if config is not None and not isinstance(config, RunConfig):
            raise TypeError(f"`config` must be a RunConfig (p5rec.config), got {type(config).__name__}")
        self.model, self.tokenizer = model, tokenizer
        self.items, self.users, self.catalog, self.histories = items, users, catalog, histories
        self.templates = templates
        self.ratings = ratings if ratings is not None else {}
        self.explanations = explanations
        self._means: RatingMeans | None = None  # the average ratings, fitted on first use
        self.config = config if config is not None else RunConfig()
        self.max_history = self.config.examples.max_history
        choice = dict(choice or {})
        needs = {"explanation": (explanations, "explanations"), "review_summary": (review_titles, "review_titles")}
        for task, (table, name) in needs.items():
            if task in choice and not table:
                raise ValueError(f"`choice` chooses {task} answers among retrieved texts: give them (`{name}`)")
        if review_titles is not None and not isinstance(review_titles, RetrievedTitles):
            review_titles = RetrievedTitles.from_dict(list(review_titles))  # the most frequent; a bare title once
        self.review_titles = review_titles
        self.predictor = predictor_for(
            model, tokenizer, items, self.config, batch_size, copy_prior, rating_prior, choice
        )

    @property
    def copy_prior(self) -> dict[str, torch.Tensor]:
        """Text task -> the weighted copy prior its answers are written with (the predictor's)."""
        return self.predictor.copy_prior

    @property
    def rating_prior(self) -> dict[str, RatingTilt]:
        """Rating task -> how its answers are centred on the baseline rating (the predictor's)."""
        return self.predictor.rating_prior

    @property
    def choice(self) -> dict[str, ChoiceRule]:
        """Text task -> how its answers are chosen among retrieved texts (the predictor's)."""
        return self.predictor.choice

    # ------------------------------------------------------------------ answers
    def recommend(
        self,
        user: str | None = None,
        history: Sequence[str] | None = None,
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Sequence[str] | None = None,
        template: str | None = None,
        num_beams: int | None = None,
    ) -> Recommendations:
        """Top-`k` items for a known `user`, or for a new user described by `history` (cold start).

        Args:
            user: a raw user ID from the training data.
            history: raw item IDs, oldest first; overrides the stored history of `user`.
            k: how many items: 1 .. the catalog size, and at most the number of `candidates` (fewer come
                back only when `exclude_seen` leaves fewer items to choose from).
            exclude_seen: never recommend an item of the history.
            candidates: rank only these raw item IDs (direct recommendation).
            template: a template id; default: the first seen template of the task.
            num_beams: beam width, >= `k`; None: ``max(20, k)``. The rule for `k`, `num_beams` and
                `candidates` is :func:`p5rec.decoding.beams.beam_width`, the same for the CLI and the server.
        """
        return self.recommend_batch(
            [user],
            [history] if history is not None else None,
            k,
            exclude_seen,
            [candidates] if candidates is not None else None,
            template,
            num_beams,
        )[0]

    def recommend_batch(
        self,
        users: Sequence[str | None],
        histories: Sequence[Sequence[str] | None] | None = None,
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Sequence[Sequence[str] | None] | None = None,
        template: str | None = None,
        num_beams: int | None = None,
    ) -> list[Recommendations]:
        """`recommend` for many users in batched forward passes."""
        if isinstance(users, str) or not isinstance(users, Sequence):
            raise TypeError(f"`users` must be a list of user IDs (None for a new user), got {users!r}")
        for user in users:
            _check_user_type(user, optional=True)
        n = len(users)
        histories = list(histories) if histories is not None else [None] * n
        candidates = list(candidates) if candidates is not None else [None] * n
        if len(histories) != n or len(candidates) != n:
            raise ValueError(
                f"`histories` ({len(histories)}) and `candidates` ({len(candidates)}) "
                f"must have one entry per user ({n})"
            )
        if any(c is not None for c in candidates):
            if any(c is None or len(c) == 0 for c in candidates):
                raise ValueError("`candidates` must be given (non-empty) for every user when used for any")
            # Checked (and a repeated ID counted once) before the lengths decide whether `k` fits.
            candidates = [list(dict.fromkeys(self.items.check(c, "candidates"))) for c in candidates]
        beam_width(k, num_beams, num_items=len(self.items), candidates=candidates)
        if template is not None and not isinstance(template, str):
            raise TypeError(f"`template` must be a template id (a string) or None, got {template!r}")
        if n == 0:
            return []
        use_candidates = any(c is not None for c in candidates)
        task = "direct_choice" if use_candidates else "sequential"
        prompts, excludes, allowed, hists = [], [], [], []
        for user, hist, cands in zip(users, histories, candidates):
            user_str, hist = self._user_and_history(user, hist)
            hists.append(hist)
            extra = {}
            if use_candidates:
                allowed.append(self.items.positions(cands, "candidates"))
                extra["candidates"] = [self.items.id_at(i) for i in allowed[-1]]
            tpl = self._template(task, template, {"user_id", "history", "history_titles", *extra})
            variables = prompt_variables(user_str, None, self._shown(hist), self.max_history, **extra)
            prompts.append(_render_input(tpl, variables))
            excludes.append(self.items.positions(hist, "history") if exclude_seen else [])
        ranked = self.predictor.rank(
            prompts, k=k, num_beams=num_beams, exclude=excludes, candidates=allowed if use_candidates else None
        )
        out = []
        index = self.predictor.items  # the index the trie was built from: positions -> raw IDs, ID strings
        for user, hist, rows in zip(users, hists, ranked):
            items = [
                RecommendedItem(index.raw_at(i), index.id_at(i), self._title(index.raw_at(i)), float(s), r + 1)
                for r, (i, s) in enumerate(rows)
            ]
            out.append(Recommendations(user, items, self._sentence(user, hist, items), tpl.id))
        return out

    def predict_rating(self, user: str, item: str, template: str | None = None) -> float:
        """Expected star rating of `item` by `user` under the model's distribution over 1-5, centred
        on the user's and item's baseline rating when the model has a rating prior."""
        return self.predict_ratings([(user, item)], template)[0]

    def predict_ratings(self, pairs: Sequence[tuple[str, str]], template: str | None = None) -> list[float]:
        prompts = []
        for user, item in pairs:
            self._check_user(user)
            self.items.check([item], "item")
            tpl = self._template("rating", template, {"user_id", "item_id", "item_title", *_RATING_CONTEXT})
            used = tpl.input_variables
            v = prompt_variables(
                self.users.id_of(user),
                (self.items.id_of(item), self._title(item)),
                None,
                self.max_history,
                # The user's other ratings, never the asked item's own (as in training and evaluation).
                user_ratings=[(self.items.id_of(i), r) for i, r in self.ratings.get(user, []) if i != item]
                if "user_ratings" in used
                else None,
                **(self._averages(user, item) if used & AVERAGE_VARIABLES else {}),
            )
            prompts.append(_render_input(tpl, v))
        baselines = None
        if "rating" in self.rating_prior and any(self.ratings.values()):
            baselines = [self._rating_means().baseline(u, i, self._own(u, i)) for u, i in pairs]
        return self.predictor.rate(prompts, "rating", baselines)

    def _rating_means(self) -> RatingMeans:
        """The damped averages of every known rating (fitted on first use)."""
        if self._means is None:
            if not any(self.ratings.values()):
                raise ValueError(
                    "this rating template shows average ratings, but the model has no known ratings "
                    "(`ratings` / ratings.json in the model directory)"
                )
            self._means = RatingMeans.fit((u, i, r) for u, rated in self.ratings.items() for i, r in rated)
        return self._means

    def _own(self, user: str, item: str) -> float | None:
        """The user's known rating of `item`, left out of the averages an answer about it uses."""
        own = [r for i, r in self.ratings.get(user, []) if i == item]
        return own[-1] if own else None

    def _averages(self, user: str, item: str) -> dict[str, str]:
        """`user_avg_rating`/`item_avg_rating` over every known rating, less the user's own of `item`."""
        means = self._rating_means()
        return rating_averages(means, user, item, self._own(user, item))

    def will_like(self, user: str, item: str, template: str | None = None) -> float:
        """The model's yes/no answer to "will `user` pick `item` next?" as a score in [0, 1].

        Read as in evaluation (`Predictor.yes_probability`): for a model trained with the history loss,
        the share of the catalog ranked below `item` after the user's history; else P("yes").
        """
        return self.will_like_batch([(user, item)], template)[0]

    def will_like_batch(self, pairs: Sequence[tuple[str, str]], template: str | None = None) -> list[float]:
        tpl = self._template("direct_yesno", template, {"user_id", "item_id", "item_title", "history"})
        prompts, asked, v = [], [], {}
        for user, item in pairs:
            self.items.check([item], "item")
            user_str, hist = self._user_and_history(user, None)
            v = prompt_variables(
                user_str, (self.items.id_of(item), self._title(item)), self._shown(hist), self.max_history
            )
            prompts.append(_render_input(tpl, v))
            asked.append(self.items.position(item))
        if not prompts:
            return []
        # The template's own renderings of the two answers, as evaluation reads them.
        answers = tuple(tpl.render({**v, "answer": a})[1] for a in ("yes", "no"))
        return self.predictor.yes_probability(prompts, asked, answers)

    def explain(self, user: str, item: str, feature: str | None = None, template: str | None = None) -> str:
        """A sentence on why `user` would like `item` (about `feature` when given)."""
        return self.explain_batch([(user, item, feature)], template)[0]

    def explain_batch(self, requests: Sequence[tuple[str, str, str | None]], template: str | None = None) -> list[str]:
        chosen = []
        for user, item, feature in requests:
            if feature is not None and (not isinstance(feature, str) or not feature.strip()):
                raise TypeError(
                    f"`feature` must be a non-empty string (an aspect such as 'sound') or None, got {feature!r}"
                )
            self._check_user(user)
            self.items.check([item], "item")
            have = {"user_id", "item_id", "item_title", "rating"} | ({"feature"} if feature else set())
            have |= {"similar_explanation"} if self.explanations is not None else set()
            chosen.append(self._template("explanation", template, have, prefer=("feature",) if feature else ()))
        # Templates that quote a rating get the predicted one: one batched pass for all of them; not
        # when the answer is chosen without reading the prompt (temperature 0).
        rule = self.predictor.choice.get("explanation")
        reads = rule is None or rule.temperature > 0
        need = [k for k, tpl in enumerate(chosen) if "rating" in tpl.input_variables] if reads else []
        ratings = dict(zip(need, self.predict_ratings([requests[k][:2] for k in need]))) if need else {}
        prompts = []
        for k, ((user, item, feature), tpl) in enumerate(zip(requests, chosen)):
            v = prompt_variables(
                self.users.id_of(user),
                (self.items.id_of(item), self._title(item)),
                None,
                self.max_history,
                feature=feature or "",
                rating=format_rating(ratings[k]) if k in ratings else "",
                similar_explanation=self.explanations.explain(item, feature or "")
                if "similar_explanation" in tpl.input_variables
                else "",
            )
            prompts.append(_render_input(tpl, v))
        if "explanation" in self.predictor.choice:
            candidates = [self.explanations.candidates(item, feature or "") for _, item, feature in requests]
            sources = [feature or "" for *_, feature in requests]
            return self.predictor.choose(prompts, candidates, task="explanation", sources=sources)
        return self.predictor.write(prompts, task="explanation")

    def summarize(
        self, review: str, user: str | None = None, template: str | None = None, item: str | None = None
    ) -> str:
        """A short title for a review text; `item`, the reviewed item, when known: where titles are
        chosen among training ones, that item's own come first."""
        return self.summarize_batch([review], user, template, None if item is None else [item])[0]

    def summarize_batch(
        self,
        reviews: Sequence[str],
        user: str | None = None,
        template: str | None = None,
        items: Sequence[str | None] | None = None,
    ) -> list[str]:
        if user is not None:
            self._check_user(user)
        if items is None:
            items = [None] * len(reviews)
        elif isinstance(items, str) or len(items) != len(reviews):
            raise ValueError(f"`items` must give one item (or None) per review ({len(reviews)}), got {items!r:.80}")
        self.items.check([i for i in items if i is not None], "item")
        prompts = []
        for text in reviews:
            if not isinstance(text, str) or not text.strip():
                raise ValueError("`review` must be a non-empty string")
            tpl = self._template("review_summary", template, {"review_text", "user_id"})
            v = prompt_variables(
                self.users.id_of(user) if user else NEW_USER,
                None,
                None,
                self.max_history,
                max_review_words=self.config.examples.max_review_words,
                review_text=text.strip(),
            )
            prompts.append(_render_input(tpl, v))
        if "review_summary" in self.predictor.choice:
            titles = [self.review_titles.candidates(item) for item in items]
            return self.predictor.choose(prompts, titles, task="review_summary", sources=list(reviews))
        return self.predictor.write(prompts, task="review_summary")

    def generate(self, prompt: str, num_beams: int = 1, max_new_tokens: int | None = None) -> str:
        """Raw text generation from any prompt (no template, no constraint)."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("`prompt` must be a non-empty string")
        _check_positive_int("num_beams", num_beams, "1 is greedy decoding")
        if max_new_tokens is not None:
            _check_positive_int("max_new_tokens", max_new_tokens, "or None for the model's target length")
        return self.predictor.generate_text([prompt], num_beams=num_beams, max_new_tokens=max_new_tokens)[0]

    # ------------------------------------------------------------------ helpers
    def _shown(self, history: Sequence[str]) -> list[tuple[str, str]]:
        """(ID string, title) of each raw item of a history, as `prompt_variables` takes them."""
        return [(self.items.id_of(i), self._title(i)) for i in history]

    def _title(self, raw: str) -> str:
        return self.catalog.get(raw, {}).get("title", "")

    def _check_user(self, user: str) -> None:
        _check_user_type(user)
        self.users.id_of(user, "user")  # the index's own error for an unknown user

    def _user_and_history(self, user: str | None, history: Sequence[str] | None) -> tuple[str, list[str]]:
        if history is not None:
            hist = self.items.check(history, "history")
            if not hist:
                raise ValueError("`history` is empty: give at least one item (or a known `user`)")
            return (self.users.id_of(user) if user in self.users else NEW_USER), hist
        if user is None:
            raise ValueError("give a `user` or a `history`")
        self._check_user(user)
        return self.users.id_of(user), list(self.histories.get(user, []))

    def _template(
        self, task: str, template: str | None, available: set[str], prefer: tuple[str, ...] = ()
    ) -> PromptTemplate:
        if template is not None:
            tpl = self.templates[template]
            if tpl.task != task:
                raise ValueError(f"template {template!r} is for task {tpl.task!r}, not {task!r}")
            missing = tpl.input_variables - available
            if missing:
                raise ValueError(f"template {template!r} needs {sorted(missing)}, which this call does not provide")
            return tpl
        usable = [t for t in self.templates.for_task(task) if t.input_variables <= available]
        if not usable:
            lacking = sorted({v for t in self.templates.for_task(task) for v in t.input_variables - available})
            why = (
                " (`similar_explanation` shows a training explanation of the item, and this model has no "
                "table of them, explanations.json: its training data had no explanations)"
                if "similar_explanation" in lacking and self.explanations is None
                else ""
            )
            raise ValueError(
                f"no {task} template can be filled from {sorted(available)}: they need {lacking}{why}; "
                "add a template or pass `template=`"
            )
        # Seen templates first (the model was trained on them); then those using preferred variables.
        usable.sort(key=lambda t: (t.split != "seen", -len(set(prefer) & t.input_variables)))
        return usable[0]

    def _sentence(self, user: str | None, history: list[str], items: list[RecommendedItem]) -> str:
        if not items:
            return "No item could be recommended."
        names = [i.title or i.item_id for i in items[:3]]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"
        who = f"user {user}" if user else "this shopper"
        because = f", based on their recent purchase of {self._title(history[-1]) or history[-1]}" if history else ""
        return f"We recommend {listed} to {who}{because}."

    def merge_lora(self) -> Recommender:
        """Fold the LoRA adapter (and trained ID-token rows) into the weights, in place; returns self.

        `save_pretrained` then writes a plain transformers model (`finetune: "full"`) that loads and
        serves without peft, and answers exactly as the adapter did.
        """
        from p5rec.modeling.lora import merge_lora

        self.model = merge_lora(self.model).eval()
        self.predictor.model = self.model
        return self

    # --------------------------------------------------------------- save/load
    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write the model directory atomically (a temp folder renamed into place).

        `path` must be new, an empty folder or an earlier model directory (which is replaced whole);
        a folder of other files is refused before anything is written (:func:`check_model_dir`).
        """
        write_model_dir(
            path,
            ModelFiles(
                self.model, self.tokenizer, self.items, self.users, self.catalog, self.histories, self.templates,
                self.config, self.ratings, self.copy_prior, self.rating_prior, self.explanations, self.choice,
                self.review_titles,
            ),
        )  # fmt: skip

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str = "auto", batch_size: int = 32) -> Recommender:
        """Load a directory written by `save_pretrained` (or a hub repo id holding one); see `p5rec.model_dir`."""
        files = read_model_dir(path, device)
        try:
            return cls(*files, batch_size=batch_size)
        except ValueError as e:  # the item trie: the tokenizer must spell every item ID differently
            raise ValueError(
                f"{files.tokenizer.name_or_path} does not fit this model's item index ({e}): the tokenizer files are "
                "damaged or come from another model; copy the whole model directory again"
            ) from None


def _check_user_type(user: object, optional: bool = False) -> None:
    if not isinstance(user, str) and not (optional and user is None):
        raise TypeError(
            f"`user` must be a user ID (a string){' or None' if optional else ''}, got {user!r} "
            f"({type(user).__name__}); for a new user pass `history=[item, ...]`"
        )


def _check_positive_int(name: str, value: object, hint: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` ({value!r}) must be a positive integer ({hint})")


def _render_input(tpl: PromptTemplate, variables: dict[str, Any]) -> str:
    """The prompt alone: at inference the answer variable is unknown, so the target renders empty."""
    return tpl.render({TASKS[tpl.task].answer: "", **variables})[0]
