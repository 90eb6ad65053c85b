"""Tables -> prompt examples: one seeded renderer for every task.

For each task, `_contexts` turns the split data into variable dicts (user, item, history,
candidates, review...), and one generic step renders them with that task's templates. Randomness
(template choice, negatives, candidate order) comes from the `numpy.random.Generator` passed in,
so the same seed gives the same examples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from p5rec.data.rating_means import RatingMeans
from p5rec.data.retrieved_explanations import RetrievalExplainer
from p5rec.data.retrieved_titles import RetrievedTitles
from p5rec.data.split import Splits, sample_negatives
from p5rec.data.tables import RecData
from p5rec.ids.index import ItemIndex, UserIndex
from p5rec.templates.config import ExampleConfig
from p5rec.templates.load import TemplateSet
from p5rec.templates.tasks import AVERAGE_VARIABLES, TASKS, TITLE_VARIABLES, format_rating
from p5rec.templates.template import PromptTemplate


@dataclass
class Example:
    """One rendered prompt with what evaluation needs to score the answer.

    `user`/`item` are raw IDs; `meta` holds task extras (raw candidate list, rating value, history).
    """

    input: str
    target: str
    task: str
    template_id: str
    template_split: str
    user: str = ""
    item: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


class ExampleBuilder:
    """Renders examples of every task for one dataset, split and ID mapping.

    Args:
        data: canonical tables.
        splits: leave-one-out sequences and the review split.
        items: the item index: the ID string prompts show for each raw item ID.
        users: the user index.
        templates: the prompt collection.
        config: sampling options.
    """

    def __init__(
        self,
        data: RecData,
        splits: Splits,
        items: ItemIndex,
        users: UserIndex,
        templates: TemplateSet,
        config: ExampleConfig | None = None,
    ) -> None:
        for name, index, kind in (("items", items, ItemIndex), ("users", users, UserIndex)):
            if not isinstance(index, kind):
                raise TypeError(f"`{name}` must be a p5rec.ids.{kind.__name__}, got {type(index).__name__}")
        for name, index, raw_ids in (("items", items, data.item_ids), ("users", users, data.user_ids)):
            missing = [raw for raw in raw_ids if raw not in index]
            if missing:
                raise ValueError(
                    f"`{name}` has no ID for {len(missing)} {name[:-1]}(s) of dataset {data.name!r} "
                    f"(e.g. {missing[0]!r}): use the index built from this data, or the data the model was trained on"
                )
        self.data, self.splits, self.items, self.users = data, splits, items, users
        self.templates = templates
        self.config = config or ExampleConfig()
        self.titles = data.titles()
        self.catalog = data.item_ids
        # Variables this data can fill: without any item title, templates quoting titles are skipped.
        every = {v for spec in TASKS.values() for v in spec.variables}
        self.available = frozenset(every if any(self.titles.values()) else every - TITLE_VARIABLES)
        # Whole columns as lists once: row access on an Arrow-backed table is slow in loops.
        # Raw item ID -> ID string in one dict: the renderer looks up over a million per Beauty epoch.
        self._item_id = {raw: items.id_of(raw) for raw in data.item_ids}
        self._cols = {
            c: data.column("interactions", c)
            for c in ("user_id", "item_id", "rating", "review", "summary", "feature", "explanation")
        }
        # Each user's rated training reviews (row numbers, oldest first): what `user_ratings` shows.
        self._rated: dict[str, list[int]] = {}
        for r in splits.review_rows("train").tolist():
            if self._cols["rating"][r] > 0:
                self._rated.setdefault(self._cols["user_id"][r], []).append(r)
        self._means: RatingMeans | None = None  # fitted on `_rated` when first needed (templates showing averages)
        self._retrieval: RetrievalExplainer | None = None  # fitted when a template shows `similar_explanation`
        self._review_titles: RetrievedTitles | None = None  # the training titles, when first asked
        self._train_reviews: frozenset[int] = frozenset()  # the rows it was fitted on

    # ------------------------------------------------------------------ public
    def usable_templates(self, task: str, split: str | None = None) -> list[PromptTemplate]:
        """Templates of `task` whose `requires` this data meets (e.g. no title templates without titles)."""
        return self.templates.for_task(task, split, available=self.available)

    def trains(self, task: str) -> bool:
        """Whether an epoch holds examples of `task`: it is weighed, has a usable seen template, and
        the data has a training context for it (P5's Beauty files have no reviews: no summaries)."""
        if self.config.weight(task) == 0 or not self.usable_templates(task, "seen"):
            return False
        return next(iter(self._contexts(task, "train", np.random.default_rng(0))), None) is not None

    def train_examples(self, rng: np.random.Generator, limit: int | None = None) -> list[Example]:
        """One epoch of training examples: each context rendered with one random *seen* template.

        `limit`: render at most that many, drawn at random from the contexts of `limit` random users
        (a tokenizer's text sample): building every context of a large dataset (negatives, ID
        strings) costs as much as the epoch itself, 3 s on Beauty.
        """
        return [render() for render in self.train_plan(rng, limit)]

    def train_plan(self, rng: np.random.Generator, limit: int | None = None) -> list[Callable[[], Example]]:
        """:meth:`train_examples` chosen but not yet rendered: calling an entry renders its example.

        Every draw from `rng` (contexts, negatives, templates, order) happens here; rendering draws
        nothing, so the entries can be rendered in any process, in any order, with the same result.
        """
        users = None
        if limit is not None and len(self.splits.sequences) > limit:
            every = list(self.splits.sequences)
            users = {every[i] for i in rng.choice(len(every), limit, replace=False)}
        chosen: list[tuple[PromptTemplate, dict[str, Any]]] = []
        for task in TASKS:
            weight = self.config.weight(task)
            templates = self.usable_templates(task, "seen")
            if weight == 0 or not templates:
                continue
            contexts = _resample(list(self._contexts(task, "train", rng, users)), weight, rng)
            # One draw for the task's contexts: the same numbers as one draw per context, 89k fewer calls.
            picks = rng.integers(len(templates), size=len(contexts)).tolist()
            chosen += [(templates[k], ctx) for k, ctx in zip(picks, contexts)]
        order = rng.permutation(len(chosen))
        if limit is not None:
            order = order[:limit]
        return [partial(self._render, *chosen[i]) for i in order]

    def eval_examples(
        self,
        task: str,
        split: str,
        rng: np.random.Generator,
        template_ids: list[str] | None = None,
        max_contexts: int | None = None,
    ) -> list[Example]:
        """Every context of `task` in `split` rendered with every chosen template (seen and unseen).

        Templates whose `requires` the data does not meet are skipped, even when named in `template_ids`.
        """
        if template_ids is None:
            templates = self.usable_templates(task)
        else:
            templates = [t for t in (self.templates[i] for i in template_ids) if t.usable_with(self.available)]
        if not templates:
            return []
        contexts = list(self._contexts(task, split, rng))
        if max_contexts is not None and len(contexts) > max_contexts:
            keep = np.sort(rng.choice(len(contexts), max_contexts, replace=False))
            contexts = [contexts[i] for i in keep]
        return [self._render(t, ctx) for t in templates for ctx in contexts]

    # ----------------------------------------------------------------- internals
    def _render(self, tpl: PromptTemplate, ctx: dict[str, Any]) -> Example:
        # A context's variables are computed when it is rendered (`partial`): a sample renders few.
        src, tgt = tpl.render(ctx["vars"](used=tpl.input_variables))
        return Example(src, tgt, tpl.task, tpl.id, tpl.split, ctx["user"], ctx["item"], ctx["meta"])

    def _vars(
        self,
        user: str,
        item: str,
        history: list[str] | None = None,
        row: int | None = None,
        *,
        used: frozenset[str] = frozenset(),
        **extra: Any,
    ) -> dict[str, Any]:
        if "user_ratings" in used:  # only for the templates that show it (3.7x the cost of a rating's variables)
            extra["user_ratings"] = self._user_ratings(user, row)
        if used & AVERAGE_VARIABLES:
            extra.update(self._averages(user, item, row))
        if "similar_explanation" in used:
            extra["similar_explanation"] = self._similar_explanation(item, extra.get("feature", ""), row)
        return prompt_variables(
            self.users.id_of(user) if user else "",
            (self._item_id[item], self.titles.get(item, "")) if item else None,
            # Only the shown part: `prompt_variables` keeps the last `max_history` anyway.
            None
            if history is None
            else [(self._item_id[i], self.titles.get(i, "")) for i in history[-self.config.max_history :]],
            self.config.max_history,
            max_review_words=self.config.max_review_words,
            **extra,
        )

    def _user_ratings(self, user: str, row: int | None) -> list[tuple[str, float]]:
        """The user's most recent rated training reviews other than `row`, as (ID string, stars)."""
        m, c = self.config.max_history, self._cols
        rows = [k for k in self._rated.get(user, [])[-(m + 1) :] if k != row][-m:]
        return [(self._item_id[c["item_id"][k]], float(c["rating"][k])) for k in rows]

    def rating_means(self) -> RatingMeans | None:
        """The damped user and item averages of the training ratings (fitted once); None when the
        training reviews hold no rating. What rating prompts show and rating answers are centred on."""
        if self._means is None and self._rated:
            c = self._cols
            rows = (r for rs in self._rated.values() for r in rs)
            self._means = RatingMeans.fit((c["user_id"][r], c["item_id"][r], c["rating"][r]) for r in rows)
        return self._means

    def _averages(self, user: str, item: str, row: int | None) -> dict[str, str]:
        """`user_avg_rating`/`item_avg_rating` over the training ratings, without the row's own."""
        means = self.rating_means()
        if means is None:
            raise ValueError("a rating template shows average ratings, but the training reviews hold no rating")
        # A training row counts in its user's averages: leave its own rating out.
        c = self._cols
        own = float(c["rating"][row]) if row is not None and row in self._rated.get(user, ()) else None
        return rating_averages(means, user, item, own)

    def retrieval(self) -> RetrievalExplainer | None:
        """The retrieval baseline's table over the training reviews (fitted once); None when no
        training review has an explanation. What `similar_explanation` shows."""
        c = self._cols
        if self._retrieval is None:
            rows = self.splits.review_rows("train").tolist()
            if not any(c["explanation"][r] for r in rows):
                return None
            self._train_reviews = frozenset(rows)
            self._retrieval = RetrievalExplainer().fit(
                [c["item_id"][r] for r in rows], [c["feature"][r] for r in rows], [c["explanation"][r] for r in rows]
            )
        return self._retrieval

    def review_titles(self) -> RetrievedTitles:
        """The training review titles (`p5rec.data.retrieved_titles`; fitted once): the candidates of
        a review summary. Empty (falsy) when no training review has one."""
        if self._review_titles is None:
            c = self._cols
            rows = self.splits.review_rows("train").tolist()
            self._review_titles = RetrievedTitles.fit([c["item_id"][r] for r in rows], [c["summary"][r] for r in rows])
        return self._review_titles

    def answer_candidates(self, example: Example) -> list[tuple[str, int]]:
        """The training texts an answer to `example` may be chosen from, with their training counts:
        an explanation's are the training explanations of its item and feature
        (`RetrievalExplainer.candidates`), a review summary's its item's training titles, then the
        most frequent ones (`RetrievedTitles.candidates`); [] for other tasks or without any."""
        if example.task == "review_summary":
            return self.review_titles().candidates(example.item)
        retrieval = self.retrieval() if example.task == "explanation" else None
        if retrieval is None:
            return []
        return retrieval.candidates(example.item, self._cols["feature"][example.meta["row"]])

    def answer_source(self, example: Example) -> str:
        """What a chosen answer to `example` should draw on (`p5rec.decoding.consensus`): a review
        summary's review, an explanation's feature; '' for other tasks."""
        column = {"review_summary": "review", "explanation": "feature"}.get(example.task)
        return self._cols[column][example.meta["row"]] if column else ""

    def _similar_explanation(self, item: str, feature: str, row: int | None) -> str:
        """The retrieval baseline's explanation for (item, feature) over the training reviews; a
        training row's own explanation does not count (the test rows' are unknown to it too)."""
        retrieval = self.retrieval()
        if retrieval is None:
            return ""
        own = self._cols["explanation"][row] if row in self._train_reviews else None
        return retrieval.explain(item, feature, leave_out=own or None)

    def _contexts(
        self, task: str, split: str, rng: np.random.Generator, users: set[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """The contexts of `task` in `split`, of every user or only of `users`."""
        if task in ("sequential", "direct_yesno", "direct_choice"):
            yield from self._sequence_contexts(task, split, rng, users)
        else:
            yield from self._review_contexts(task, split, users)

    def _sequence_contexts(
        self, task: str, split: str, rng: np.random.Generator, users: set[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        cfg, item_id = self.config, self._item_id
        for user, seq in self.splits.sequences.items():
            if users is not None and user not in users:
                continue
            if split == "train":
                train = seq[:-2]
                if len(train) < 2:
                    continue
                if task == "sequential" and cfg.sequential_positions == "windows":
                    positions = range(len(train) - 1, 0, -cfg.max_history)[::-1]
                elif task == "sequential" and cfg.sequential_positions != "last":  # "auto" outside a recipe: all
                    positions = range(1, len(train))
                else:
                    positions = [len(train) - 1] if task == "sequential" else [int(rng.integers(1, len(train)))]
                pairs = [(train[:t], train[t]) for t in positions]
            else:
                pairs = [(self.splits.history(user, split), self.splits.target(user, split))]
            for history, target in pairs:
                # `history_ids`: the ID strings the prompt shows (the last `max_history`, oldest first) and
                # `next_id`: the ID string of the item that followed; training uses both to learn next-item
                # prediction at every history position (`TrainConfig.history_loss`).
                shown = [item_id[i] for i in history[-cfg.max_history :]]
                meta: dict[str, Any] = {"history": history, "history_ids": shown, "next_id": item_id[target]}
                if task == "sequential":
                    yield {
                        "user": user,
                        "item": target,
                        "meta": meta,
                        "vars": partial(self._vars, user, target, history),
                    }
                elif task == "direct_choice":
                    n = cfg.train_candidates if split == "train" else cfg.eval_candidates
                    negs = sample_negatives(seq, self.catalog, min(n - 1, len(self.catalog) - len(set(seq))), rng)
                    cands = [target, *negs]
                    cands = [cands[i] for i in rng.permutation(len(cands))]
                    meta["candidates"] = cands
                    yield {
                        "user": user,
                        "item": target,
                        "meta": meta,
                        "vars": partial(self._vars, user, target, history, candidates=[item_id[c] for c in cands]),
                    }
                else:  # direct_yesno: one positive and one negative per context
                    neg = sample_negatives(seq, self.catalog, 1, rng)[0]
                    for item, answer in ((target, "yes"), (neg, "no")):
                        yield {
                            "user": user,
                            "item": item,
                            "meta": {**meta, "label": answer == "yes"},
                            "vars": partial(self._vars, user, item, history, answer=answer),
                        }

    def _review_contexts(self, task: str, split: str, users: set[str] | None = None) -> Iterator[dict[str, Any]]:
        c = self._cols
        for r in self.splits.review_rows(split):
            user, item, rating = c["user_id"][r], c["item_id"][r], float(c["rating"][r])
            if users is not None and user not in users:
                continue
            if task == "rating":
                if rating <= 0:
                    continue
                extra = {"rating": format_rating(rating)}
            elif task == "explanation":
                if not c["explanation"][r]:
                    continue
                extra = {
                    "explanation": c["explanation"][r],
                    "feature": c["feature"][r],
                    "rating": format_rating(rating),
                }
            elif task == "review_summary":
                if not c["summary"][r] or not c["review"][r]:
                    continue
                extra = {"summary": c["summary"][r], "review_text": c["review"][r]}
            else:  # review_rating
                if not c["review"][r] or rating <= 0:
                    continue
                extra = {"review_text": c["review"][r], "rating": format_rating(rating)}
            yield {
                "user": user,
                "item": item,
                "meta": {"rating": rating, "row": int(r)},
                "vars": partial(self._vars, user, item, row=int(r), **extra),
            }


def prompt_variables(
    user_id: str,
    item: tuple[str, str] | None,
    history: list[tuple[str, str]] | None,
    max_history: int,
    max_review_words: int | None = None,
    user_ratings: list[tuple[str, float]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The variables a template sees, from ID strings and titles (shared by training and the API).

    Args:
        user_id: the user's ID string ("" when there is none).
        item: (ID string, title) of the item in question, if any.
        history: (ID string, title) per past item, oldest first; only the last `max_history` are kept.
        max_review_words: a `review_text` keeps only its first this many words (None: all).
        user_ratings: (ID string, stars) per other rating of the user, oldest first; the last
            `max_history` become `user_ratings` ("item_7 5.0").
        extra: task-specific variables (rating, candidates, review_text, ...).
    """
    v: dict[str, Any] = {"user_id": user_id}
    if item is not None:
        v["item_id"], v["item_title"] = item
    if history is not None:
        h = history[-max_history:]
        v["history"] = [i for i, _ in h]
        v["history_titles"] = [t for _, t in h]
    if user_ratings is not None:
        v["user_ratings"] = [f"{i} {format_rating(r)}" for i, r in user_ratings[-max_history:]]
    v.update(extra)
    if max_review_words is not None and "review_text" in v:
        words = v["review_text"].split()
        if len(words) > max_review_words:
            v["review_text"] = " ".join(words[:max_review_words])
    return v


def rating_averages(means: RatingMeans, user: str, item: str, exclude: float | None = None) -> dict[str, str]:
    """The two average-rating variables (shared by training and the API), written as ratings are."""
    return {
        "user_avg_rating": format_rating(means.user(user, exclude)),
        "item_avg_rating": format_rating(means.item(item, exclude)),
    }


def _resample(contexts: list, weight: float, rng: np.random.Generator) -> list:
    """Repeat contexts `floor(weight)` times plus a random `frac(weight)` share of them."""
    whole, frac = int(weight), weight - int(weight)
    out = contexts * whole
    if frac > 0 and contexts:
        k = int(round(frac * len(contexts)))
        out += [contexts[i] for i in rng.choice(len(contexts), k, replace=False)]
    return out
