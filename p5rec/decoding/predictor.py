"""A model, its tokenizer and its catalog trie, answering batches of prompts.

This is the one place prompts become tensors and tensors become answers; evaluation and the
public API both call it, so they decode exactly the same way. Items are positions in the
:class:`~p5rec.ids.ItemIndex` it is given: the trie is built from that index's token sequences,
and a ranked position reads its raw ID and ID string back from the same index.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping, Sequence

import torch
from transformers import LogitsProcessor, LogitsProcessorList, PreTrainedModel, PreTrainedTokenizerBase

from p5rec.decoding.affinity import next_item_percentile, next_item_scores
from p5rec.decoding.beams import beam_width
from p5rec.decoding.consensus import Candidates, ChoiceRule, consensus, texts_and_counts
from p5rec.decoding.generate import recommend_items, score_continuations, score_targets
from p5rec.decoding.rating import RatingTilt, answer_distribution, rating_distribution, tilt
from p5rec.decoding.text import CopyBonusLogitsProcessor, VisibleTextLogitsProcessor, blank_tokens
from p5rec.decoding.trie import ItemTrie
from p5rec.ids.index import ItemIndex
from p5rec.modeling.attention import attention_kernels
from p5rec.modeling.backbone import is_encoder_decoder
from p5rec.modeling.inputs import encode_prompts, tokenize
from p5rec.templates.tasks import RATING_VALUES

READOUTS = ("answer", "next_item")


class Predictor:
    """Batched, thread-safe inference over one model.

    Args:
        model: a trained seq2seq or causal LM (peft-wrapped or plain), in eval mode.
        tokenizer: its tokenizer.
        items: the catalog's item index; ranked results are positions in it (`items.raw_at(i)`,
            `items.id_at(i)`), and `exclude` / `candidates` are given as positions too.
        max_input_length / max_target_length: token limits used in training.
        batch_size: prompts per forward pass.
        readout: how yes/no prompts and choices among candidates are answered: "answer" (the
            probability of the "yes" answer; the candidates by constrained beam search of the answer)
            or "next_item" (the next-item distribution after the prompt's history,
            :mod:`p5rec.decoding.affinity`: where the asked item stands in it, the candidates in its
            order, and for a model trained with `prompt_eos` the whole catalog in its order;
            decoder-only models with one token per item, trained with the history loss).
        yes_no_readout: the earlier name of `readout`.
        prompt_eos: the model was trained with every prompt followed by eos (`model.prompt_eos`);
            decoder-only models only, encoder prompts always are.
        copy_bonus: the model was trained with this bonus on its prompt's tokens in text answers
            (`model.copy_bonus`); :meth:`write` adds it too. Decoder-only models.
        copy_prior: task -> `(vocab,)` amount added to the copy bonus of each prompt token when
            :meth:`write` answers that task (`p5rec.training.copy_prior`, weighted; chosen on the
            valid split after training). Decoder-only models.
        rating_prior: rating task -> how its answers are centred on a baseline rating
            (:class:`p5rec.decoding.rating.RatingTilt`, chosen on the valid split after training),
            applied when :meth:`rate` / :meth:`rating_distribution` get the task and the baselines.
        choice: text task -> the rule by which :meth:`choose` picks that task's answer among
            retrieved candidates (:class:`~p5rec.decoding.consensus.ChoiceRule`; chosen on the valid
            split after training). A task without one is written (:meth:`write`).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        items: ItemIndex,
        max_input_length: int = 512,
        max_target_length: int = 64,
        batch_size: int = 32,
        readout: str = "answer",
        yes_no_readout: str | None = None,
        prompt_eos: bool = False,
        copy_bonus: float = 0.0,
        copy_prior: Mapping[str, torch.Tensor] | None = None,
        rating_prior: Mapping[str, RatingTilt] | None = None,
        choice: Mapping[str, ChoiceRule] | None = None,
    ) -> None:
        name = "readout"
        if yes_no_readout is not None:
            readout, name = yes_no_readout, "yes_no_readout"
        if readout not in READOUTS:
            raise ValueError(f"`{name}` ({readout!r}) must be one of {READOUTS}")
        self.model, self.tokenizer = model.eval(), tokenizer
        if not isinstance(items, ItemIndex):
            raise TypeError(f"`items` must be the catalog's ItemIndex, got {type(items).__name__}")
        self.items = items
        self.max_input_length, self.max_target_length, self.batch_size = max_input_length, max_target_length, batch_size
        self.trie = ItemTrie(items.token_sequences(tokenizer), tokenizer.eos_token_id)
        self.encoder_decoder = is_encoder_decoder(model)
        single = bool((self.trie.item_lengths == 2).all())  # one ID token, then eos
        if readout == "next_item" and (self.encoder_decoder or not single):
            raise ValueError(
                f"`{name}='next_item'` needs a decoder-only model with one token per item "
                "(`ids.representation: tokens`, flat IDs); use 'answer'"
            )
        if copy_bonus and self.encoder_decoder:
            raise ValueError(f"`copy_bonus` ({copy_bonus}) needs a decoder-only model; this one is an encoder-decoder")
        if copy_prior and self.encoder_decoder:
            raise ValueError("`copy_prior` needs a decoder-only model; this one is an encoder-decoder")
        self.readout, self.prompt_eos, self.copy_bonus = readout, prompt_eos, float(copy_bonus)
        self.copy_prior = {task: _checked_prior(v, f"`copy_prior[{task!r}]`") for task, v in (copy_prior or {}).items()}
        self.rating_prior = dict(rating_prior or {})
        for task, how in self.rating_prior.items():
            if not isinstance(how, RatingTilt) or len(how.base) != len(RATING_VALUES):
                raise ValueError(f"`rating_prior[{task!r}]` must be a RatingTilt over {len(RATING_VALUES)} values")
        self.choice = dict(choice or {})
        for task, rule in self.choice.items():
            if not isinstance(rule, ChoiceRule):
                raise TypeError(f"`choice[{task!r}]` must be a ChoiceRule, got {type(rule).__name__}")
        # One lock: generation mutates caches and the model is shared between server threads.
        self._lock = threading.Lock()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _batches(self, prompts: Sequence[str]):
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            batch = encode_prompts(
                self.tokenizer, chunk, self.max_input_length, self.encoder_decoder, self.device, self.prompt_eos
            )
            yield start, batch

    @torch.inference_mode()
    def rank(
        self,
        prompts: Sequence[str],
        k: int = 10,
        num_beams: int | None = None,
        exclude: Sequence[Sequence[int]] | None = None,
        candidates: Sequence[Sequence[int]] | None = None,
    ) -> list[list[tuple[int, float]]]:
        """Top-`k` distinct catalog items per prompt as (position in `items`, log-probability), best first.

        `k`, `num_beams` and the candidate lists follow the one rule of :func:`p5rec.decoding.beams.beam_width`
        (checked before any work): `num_beams` None is ``max(DEFAULT_NUM_BEAMS, k)``.
        """
        beam_width(k, num_beams, num_items=len(self.items), candidates=candidates)
        out: list[list[tuple[int, float]]] = []
        with self._lock:
            for start, batch in self._batches(prompts):
                n = batch["input_ids"].shape[0]
                cut = None if exclude is None else list(exclude[start : start + n])
                cands = None if candidates is None else list(candidates[start : start + n])
                ranked: list[list[tuple[int, float]] | None] = [None] * n
                # Candidates always; the whole catalog where the answer would follow the prompt's eos.
                if self.readout == "next_item" and (cands is not None or self.prompt_eos):
                    ranked = self._read_next(batch, k, cands, cut)
                # Decoded: every row with the answer read-out; with the next-item one, prompts without a history.
                todo = [r for r in range(n) if ranked[r] is None]
                if todo:
                    decoded = recommend_items(
                        self.model,
                        batch if len(todo) == n else {key: value[todo] for key, value in batch.items()},
                        self.trie,
                        k=k,
                        num_beams=num_beams,
                        exclude=None if cut is None else [cut[r] for r in todo],
                        candidates=None if cands is None else [cands[r] for r in todo],
                    )
                    for r, rows in zip(todo, decoded):
                        ranked[r] = rows
                out += ranked
        return out

    @property
    def yes_no_readout(self) -> str:
        """The earlier name of :attr:`readout`."""
        return self.readout

    def _read_next(
        self, batch: dict[str, torch.Tensor], k: int, candidates: list[Sequence[int]] | None, exclude: list | None
    ) -> list[list[tuple[int, float]] | None]:
        """Each row's candidates (without candidates: the catalog) in the order of the next-item
        distribution at its newest history item, scored by their log-probability among them; None
        for a prompt without a history (a new user), which has no such distribution and is decoded
        instead.

        The history loss trains that position to predict the next item; the answer's own position
        may lie after words or the prompt's eos, from which it would have to read the history back.
        """
        if candidates is None:
            return self._read_catalog(batch, k, exclude)
        scores, found = next_item_scores(self.model, batch, self.trie.item_tokens[:, 0], candidates)
        scores, found = scores.cpu(), found.tolist()  # one copy per batch, not a device sync per row
        out: list[list[tuple[int, float]] | None] = []
        for row, cands in enumerate(candidates):
            if not found[row]:
                out.append(None)
                continue
            banned = set(exclude[row]) if exclude is not None else set()
            allowed = [c for c in dict.fromkeys(cands) if c not in banned]
            if not allowed:
                out.append([])
                continue
            logp = torch.log_softmax(scores[row, allowed], dim=-1)
            top = torch.topk(logp, min(k, len(allowed)))
            out.append([(allowed[j], float(v)) for v, j in zip(top.values.tolist(), top.indices.tolist())])
        return out

    def _read_catalog(
        self, batch: dict[str, torch.Tensor], k: int, exclude: list | None
    ) -> list[list[tuple[int, float]] | None]:
        """:meth:`_read_next` over the whole catalog: one masked log-softmax and one top-k per batch."""
        logp, found = self._catalog_logprobs(batch, exclude)
        top = torch.topk(logp, min(k, logp.shape[1]), dim=-1)
        values, indices = top.values.tolist(), top.indices.tolist()
        out: list[list[tuple[int, float]] | None] = []
        for row in range(logp.shape[0]):
            left = logp.shape[1] - (len(set(exclude[row])) if exclude is not None else 0)
            m = min(k, max(left, 0))  # never an excluded item, even where few are left
            out.append(list(zip(indices[row][:m], values[row][:m])) if found[row] else None)
        return out

    def _catalog_logprobs(
        self, batch: dict[str, torch.Tensor], exclude: list | None = None
    ) -> tuple[torch.Tensor, list[bool]]:
        """`(B, catalog)` log-probabilities of the next item at each row's newest history item (on the
        CPU), renormalised without the row's `exclude`d positions; and whether each row has a history."""
        rows = batch["input_ids"].shape[0]
        scores, found = next_item_scores(self.model, batch, self.trie.item_tokens[:, 0], [()] * rows)
        logits = scores.float().cpu()
        if exclude is not None:
            hits = [(r, c) for r, cut in enumerate(exclude) for c in set(cut)]
            if hits:
                r_idx, c_idx = zip(*hits)
                logits[list(r_idx), list(c_idx)] = float("-inf")
        return logits.log_softmax(-1), found.tolist()

    @torch.inference_mode()
    def target_logprob(self, prompts: Sequence[str], targets: Sequence[int]) -> list[float]:
        """Per prompt, the log-probability of one catalog item's ID (tokens + eos), by teacher forcing;
        where :meth:`rank` reads the catalog at the newest history item (`prompt_eos`), the item's
        log-probability there among the catalog, so that the two measure the same read-out."""
        out: list[float] = []
        ids = self.trie.item_tokens
        lengths = self.trie.item_lengths.tolist()
        with self._lock:
            for start, batch in self._batches(prompts):
                rows = targets[start : start + batch["input_ids"].shape[0]]
                seqs = [ids[i, : lengths[i]].tolist() for i in rows]
                if self.readout == "next_item" and self.prompt_eos:
                    logp, found = self._catalog_logprobs(batch)
                    read = logp[torch.arange(len(rows)), torch.as_tensor(rows)]
                    if not all(found):  # rows without a history: their answer, teacher-forced
                        forced = score_targets(self.model, batch, seqs).cpu().float()
                        read = torch.where(torch.tensor(found), read, forced)
                    out += read.tolist()
                else:
                    out += score_targets(self.model, batch, seqs).tolist()
        return out

    @torch.inference_mode()
    def write(
        self,
        prompts: Sequence[str],
        num_beams: int = 1,
        task: str | None = None,
        copy_prior: torch.Tensor | None = None,
    ) -> list[str]:
        """The answer of a text task (an explanation, a summary): words, never empty, never an item ID.

        :class:`~p5rec.decoding.text.VisibleTextLogitsProcessor` keeps a small model, trained mostly
        on item answers, from ending at once or writing ID tokens (which decode to nothing). `task`
        picks the copy prior the model was saved with for it; `copy_prior` gives one instead.
        """
        if copy_prior is not None:
            copy_prior = _checked_prior(copy_prior, "`copy_prior`")
        prior = copy_prior if copy_prior is not None else self.copy_prior.get(task) if task else None
        return self.generate_text(prompts, num_beams, text_answer=True, copy_prior=prior)

    def choose(
        self,
        prompts: Sequence[str],
        candidates: Sequence[Candidates],
        task: str | None = None,
        rule: ChoiceRule | None = None,
        sources: Sequence[str] | None = None,
    ) -> list[str]:
        """Per prompt, one of its candidate texts: the one with the highest expected ROUGE-L against
        its candidates weighted by the model (and by their training counts), plus the rule's weights
        on the share of its words that its source holds and on its length
        (:func:`p5rec.decoding.consensus.consensus`).

        `candidates`: per prompt, texts or (text, training count) pairs. `rule` None: the one chosen
        for `task` (`choice`); a temperature of 0 does not run the model. `sources`: per prompt, the
        text the answer should draw on (the review a summary is for, the feature an explanation is
        about); None: the prompts themselves.
        """
        if rule is None:
            if task not in self.choice:
                known = sorted(self.choice)
                raise ValueError(f"no rule given and none chosen for task {task!r} (chosen for: {known})")
            rule = self.choice[task]
        if sources is None:
            sources = prompts
        elif len(sources) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(sources)} sources: give one source per prompt")
        split = [texts_and_counts(c) for c in candidates]
        texts = [t for t, _ in split]
        scores = self.candidate_scores(prompts, texts) if rule.temperature else [None] * len(prompts)
        return [t[consensus(t, s, rule, src, n)] for src, (t, n), s in zip(sources, split, scores, strict=True)]

    @torch.inference_mode()
    def candidate_scores(self, prompts: Sequence[str], candidates: Sequence[Candidates]) -> list[list[float]]:
        """Per prompt, the model's mean log-probability per token of each candidate text as its
        answer (the text's tokens and eos, as training tokenizes targets); counts are ignored."""
        if len(candidates) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(candidates)} candidate lists: give one list per prompt")
        candidates = [texts_and_counts(c)[0] for c in candidates]
        for k, texts in enumerate(candidates):
            if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
                raise ValueError(f"candidates[{k}] must be a non-empty list of non-blank texts, got {texts!r:.80}")
        # Each distinct text tokenized once: a summary's 100 titles are every prompt's candidates.
        distinct = list(dict.fromkeys(t for texts in candidates for t in texts))
        eos, cut = self.tokenizer.eos_token_id, self.max_target_length - 1
        seq_of = {t: ids[:cut] + [eos] for t, ids in zip(distinct, tokenize(self.tokenizer, distinct))}
        out: list[list[float]] = []
        with self._lock:
            for start, batch in self._batches(prompts):
                lists = candidates[start : start + batch["input_ids"].shape[0]]
                seqs = [[seq_of[t] for t in texts] for texts in lists]
                totals = score_continuations(self.model, batch, seqs)
                out += [(total / torch.tensor([len(s) for s in row])).tolist() for total, row in zip(totals, seqs)]
        return out

    @functools.cached_property
    def _text_rules(self) -> tuple[torch.Tensor, list[int]]:
        """Blank tokens over the tokenizer's vocabulary, and the tokens a text answer never holds."""
        added = self.items.new_tokens()
        ids = self.tokenizer.convert_tokens_to_ids(added) if added else []
        return blank_tokens(self.tokenizer, len(self.tokenizer)), [*ids, *self.tokenizer.all_special_ids]

    @torch.inference_mode()
    def generate_text(
        self,
        prompts: Sequence[str],
        num_beams: int = 1,
        max_new_tokens: int | None = None,
        text_answer: bool = False,
        copy_prior: torch.Tensor | None = None,
    ) -> list[str]:
        """Free text from any prompt: greedy or beam search, unconstrained unless `text_answer` (see :meth:`write`)."""
        out: list[str] = []
        max_new = max_new_tokens or self.max_target_length
        if copy_prior is not None and not bool(copy_prior.any()):  # once per call: a device sync
            copy_prior = None
        with self._lock, attention_kernels(self.device):
            for _, batch in self._batches(prompts):
                # New processors per batch: the copy bonus reads each batch's prompts at its first step.
                processors = LogitsProcessorList(self._text_processors(copy_prior)) if text_answer else None
                text = {"logits_processor": processors} if text_answer else {}
                gen = self.model.generate(
                    **batch,
                    max_new_tokens=max_new,
                    num_beams=num_beams,
                    do_sample=False,
                    no_repeat_ngram_size=4,  # small models loop ("is is is ..."); no real sentence repeats 4 pieces
                    pad_token_id=self.tokenizer.pad_token_id,
                    eos_token_id=self.tokenizer.eos_token_id,
                    **text,
                )
                if not self.encoder_decoder:
                    gen = gen[:, batch["input_ids"].shape[1] :]
                out += [t.strip() for t in self.tokenizer.batch_decode(gen, skip_special_tokens=True)]
        return out

    def _text_processors(self, copy_prior: torch.Tensor | None = None) -> list[LogitsProcessor]:
        """The copy bonus the model was trained with and the copy prior (if any), then the visible-text rules."""
        blank, banned = self._text_rules
        copying = self.copy_bonus or copy_prior is not None
        copy = (
            [CopyBonusLogitsProcessor(self.copy_bonus, self.tokenizer.all_special_ids, copy_prior)] if copying else []
        )
        return [*copy, VisibleTextLogitsProcessor(blank, banned, self.tokenizer.eos_token_id)]

    @torch.inference_mode()
    def answer_distribution(self, prompts: Sequence[str], answers: Sequence[str]) -> list[list[float]]:
        """Per prompt, the probability of each fixed answer (e.g. "yes", "no"), renormalised over them.

        Exact teacher-forced scores, so there is no invalid output to count, unlike free generation.
        """
        out: list[list[float]] = []
        with self._lock:
            for _, batch in self._batches(prompts):
                out += answer_distribution(self.model, batch, self.tokenizer, tuple(answers)).tolist()
        return out

    @torch.inference_mode()
    def yes_probability(
        self, prompts: Sequence[str], items: Sequence[int], answers: Sequence[str] = ("yes", "no")
    ) -> list[float]:
        """Per yes/no prompt about catalog item `items[i]` (a position), a score in [0, 1] for "yes".

        With the "answer" read-out, P(answers[0]) renormalised over the two answers; with "next_item",
        the share of the catalog the model ranks below the asked item after the prompt's history.
        Either way every prompt gets a score: there is no answer text to fail to parse.
        """
        if len(items) != len(prompts):
            raise ValueError(f"`items` has {len(items)} entries for {len(prompts)} prompts: give one item per prompt")
        if self.readout == "answer":
            return [row[0] for row in self.answer_distribution(prompts, answers)]
        tokens = self.trie.item_tokens[:, 0]
        out: list[float] = []
        with self._lock:
            for start, batch in self._batches(prompts):
                asked = items[start : start + batch["input_ids"].shape[0]]
                out += next_item_percentile(self.model, batch, tokens, asked).tolist()
        return out

    @torch.inference_mode()
    def rate(
        self, prompts: Sequence[str], task: str | None = None, baselines: Sequence[float] | None = None
    ) -> list[float]:
        """Expected star rating under the model's distribution over "1.0" ... "5.0" (centred on
        `baselines` as :meth:`rating_distribution` says)."""
        numbers = [float(v) for v in RATING_VALUES]
        return [sum(p * v for p, v in zip(row, numbers)) for row in self.rating_distribution(prompts, task, baselines)]

    @torch.inference_mode()
    def rating_distribution(
        self, prompts: Sequence[str], task: str | None = None, baselines: Sequence[float] | None = None
    ) -> list[list[float]]:
        """Per prompt, the probability of each rating string "1.0" ... "5.0" (rows sum to 1): the
        exact read-out behind `rate`; its most likely value is the answer a constrained greedy
        decoder would give, and never fails to parse.

        With the `task` the model has a rating prior for and one baseline rating per prompt
        (`RatingMeans.baseline` of the prompt's user and item), each distribution is centred on its
        baseline (:func:`p5rec.decoding.rating.tilt`); otherwise it is the model's as trained.
        """
        if baselines is not None and len(baselines) != len(prompts):
            raise ValueError(f"`baselines` has {len(baselines)} entries for {len(prompts)} prompts: one per prompt")
        out: list[torch.Tensor] = []
        with self._lock:
            for _, batch in self._batches(prompts):
                out.append(rating_distribution(self.model, batch, self.tokenizer, values=RATING_VALUES))
        dist = torch.cat(out) if out else torch.zeros(0, len(RATING_VALUES))
        how = self.rating_prior.get(task) if task is not None else None
        if how is not None and baselines is not None:
            dist = tilt(dist, [float(v) for v in RATING_VALUES], how, baselines)
        return dist.tolist()


def _checked_prior(prior: torch.Tensor, name: str) -> torch.Tensor:
    """`prior` if it is one finite number per vocabulary token; checked once, not per decoded batch."""
    if not isinstance(prior, torch.Tensor) or prior.dim() != 1 or not bool(torch.isfinite(prior).all()):
        raise ValueError(f"{name} must be a 1-D tensor of finite numbers, one per vocabulary token")
    return prior
