"""Model settings: :class:`ModelConfig` (backbone, presets, token limits, dropout) and
:class:`LoraSettings`, importable without torch or transformers."""

from __future__ import annotations

from dataclasses import dataclass, field

# name -> (d_model, layers per stack, heads, d_ff). Decoder-only architectures stack twice the layers
# (an encoder-decoder has two stacks), so "nano" is SASRec's network as a decoder-only model: two
# blocks of width 64, one head, a feed-forward as wide as the model. "small" has the shape of t5-small.
PRESETS: dict[str, tuple[int, int, int, int]] = {
    "nano": (64, 1, 1, 64),
    "tiny": (64, 2, 2, 256),
    "mini": (256, 4, 4, 1024),
    "small": (512, 6, 8, 2048),
}
ARCHITECTURES = ("t5", "gpt2", "llama", "gpt_neox")
AUTO = "auto"


# The choice rule's numbers as settings (`p5rec.decoding.consensus.ChoiceRule` without the prefix).
ITEM_INITS = ("random", "reviews")  # how a scratch model's item-token embeddings start
CHOICE_FIELDS = ("choice_temperature", "choice_relevance", "choice_frequency", "choice_brevity")


@dataclass
class ModelConfig:
    """Which backbone to use.

    Args:
        backbone: "auto" (a preset chosen from the data by `p5rec.recipe`), a preset name ("nano",
            "tiny", "mini", "small": built from scratch, offline) or a Hugging Face model id / local
            path ("t5-small", "google/flan-t5-base", "gpt2", ...).
        architecture: for presets, "gpt_neox" (decoder-only with rotary positions and dropout on
            embeddings, attention and residuals: the default), "gpt2" or "llama" (decoder-only; twice
            the layers of the T5 stacks so the parameter count is similar), or "t5" (encoder-decoder).
            Ignored for checkpoints.
        vocab_size: SentencePiece vocabulary size for presets (the data's text; ID tokens come on top).
        max_input_length / max_target_length: token limits (inputs are truncated on the left side
            of the history by the renderer, here only as a safety net).
        dropout: dropout on embeddings and residual paths of scratch models; None lets the recipe
            choose it from the data (0.1 when a model is built outside the recipe).
        attention_dropout: dropout on attention probabilities of scratch models; None: as `dropout`
            (SASRec's choice). Lower it (0.1) for prompts whose answer must read the history back
            through attention (text after the history): at 0.5 next-item NDCG@10 fell by ~25% for
            such prompts, while for the shipped sequential prompts, which end with the history, 0.5 was best
            (docs/benchmarks.md).
        text_dropout: dropout (hidden and attention) while training on batches of the tasks that
            answer in words or stars and show no item history (ratings, explanations, reviews);
            None: as `dropout`. At 0.5 a small model learns to ignore a rating prompt; 0.1 on
            these batches alone did not change the every-task recipe's results (docs/benchmarks.md).
        prompt_eos: follow every prompt of a decoder-only model with the eos token, as encoder
            prompts are, so a text or rating answer always starts after the same token whatever
            words a template ends with (held-out templates ending in plain words answer badly
            without it). With the history loss the next items are then ranked at the newest history
            item (an answer after the eos would have to read the history back). Off by default:
            measured on one seed it lifted the text answers but broke two held-out next-item
            templates on Musical Instruments (docs/benchmarks.md).
        copy_bonus: added to the logit of every token of the prompt (special tokens aside) while a
            text answer (explanation, review summary) is trained and written, decoder-only models:
            a feature "this word is in the input" that a small model does not learn to compute
            itself, so that its summaries take their words from the review instead of writing one
            title for every review (a pointer-generator's copy path, with a fixed gate). 0: off.
        copy_prior: when a decoder-only model writes a text answer, each prompt token's copy bonus
            gains this weight times the log-odds that the training answers of the task repeat that
            token (`p5rec.training.copy_prior`): titles repeat "strings" and "tuner", not "I" or
            "the". None: the weight is chosen per text task on the valid split after training, from
            (0, 1, 2, 4, 8) by ROUGE-1, when the run validates (else 0). 0: off.
        rating_prior: centre each rating answer (rating, review-based rating) on a baseline
            predictor's rating, the global mean plus the user's and the item's damped offsets
            (`p5rec.data.rating_means`, `p5rec.decoding.rating.tilt`): a small scratch model answers
            every rating prompt with one distribution (the global mean) for many epochs, and the
            baseline alone beats a biased MF on sparse data. False: the model's distribution as trained.
        rating_prior_weight: how much of the model's own lean per prompt the centred answer keeps
            (0: the baseline's rating; 1: the model's distribution shifted onto the baseline). None:
            chosen per rating task on the valid split after training: of (0, 0.5, 1, 2), the smallest
            within one standard error of the best RMSE, when the run validates (else no prior).
        choose_answers: answer an explanation, or a review summary, with one of the training texts
            (an explanation: the training explanations of the item and feature, `RetrievalExplainer.
            candidates`; a summary: the 100 most frequent training titles): the one the candidates,
            weighted by the model's probability of each, agree with most, plus a weight on the share
            of its words that its source holds (the review, the feature; `p5rec.decoding.consensus`):
            a real sentence where a small scratch model writes the right words in no order. Per task,
            used when it scores better than writing on the valid split (BLEU + ROUGE-1 + ROUGE-L).
            False: written.
        choice_temperature: how sharply the model's probabilities weigh the candidates (0: alike,
            the model not read). None: chosen on the valid split from (0, 0.5, 1, 2).
        choice_relevance: the weight of the share of a candidate's words found in the answer's source
            (a summary's review, an explanation's feature). None: chosen on the valid split from
            (0, 0.25, 0.5, 1).
        choice_frequency: each candidate also weighs its training count to this power (0: alike).
            None: chosen on the valid split from (0, 1).
        choice_brevity: the weight of BLEU's brevity factor of a candidate against the candidates'
            expected length (agreement favours short texts). None: chosen on the valid split from
            (0, 0.1, 0.3). Any of the four given: answers are always chosen (never written) where
            the task has candidates.
        item_init: how a scratch preset's item-token embeddings start: "random" (the backbone's
            initialisation), or "reviews": items with training reviews start at their review vectors
            (`p5rec.data.review_vectors`: TF-IDF of their reviews and titles reduced by SVD, at the
            norm of a random row), so that rarely bought items start near items reviewed alike.
    """

    backbone: str = AUTO
    architecture: str = "gpt_neox"
    vocab_size: int = 2000
    max_input_length: int = 512
    max_target_length: int = 64
    dropout: float | None = None
    attention_dropout: float | None = None
    text_dropout: float | None = None
    prompt_eos: bool = False
    copy_bonus: float = 0.0
    copy_prior: float | None = None
    rating_prior: bool = True
    rating_prior_weight: float | None = None
    choose_answers: bool = True
    choice_temperature: float | None = None
    choice_relevance: float | None = None
    choice_frequency: float | None = None
    choice_brevity: float | None = None
    item_init: str = "random"

    def __post_init__(self) -> None:
        if self.item_init not in ITEM_INITS:
            raise ValueError(f"`item_init` must be one of {ITEM_INITS}, got {self.item_init!r}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"`architecture` must be one of {ARCHITECTURES}, got {self.architecture!r}")
        if self.vocab_size < 64:
            raise ValueError(f"`vocab_size` ({self.vocab_size}) must be >= 64")
        if self.max_input_length < 8 or self.max_target_length < 2:
            raise ValueError("`max_input_length` must be >= 8 and `max_target_length` >= 2")
        for name in ("dropout", "attention_dropout", "text_dropout"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise ValueError(f"`{name}` ({value!r}) must be in [0, 1)")
        if not self.copy_bonus >= 0.0 or self.copy_bonus == float("inf"):
            raise ValueError(f"`copy_bonus` ({self.copy_bonus!r}) must be a finite number >= 0")
        if self.copy_prior is not None and (not self.copy_prior >= 0.0 or self.copy_prior == float("inf")):
            raise ValueError(f"`copy_prior` ({self.copy_prior!r}) must be None (chosen on the valid split) or >= 0")
        w = self.rating_prior_weight
        if w is not None and (isinstance(w, bool) or not isinstance(w, (int, float)) or not 0.0 <= w < float("inf")):
            raise ValueError(f"`rating_prior_weight` ({w!r}) must be None (chosen on the valid split) or a number >= 0")
        for name in CHOICE_FIELDS:
            t = getattr(self, name)
            if t is not None and (
                isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= t < float("inf")
            ):
                raise ValueError(f"`{name}` ({t!r}) must be None (chosen on the valid split) or a number >= 0")

    @property
    def is_preset(self) -> bool:
        return self.backbone in PRESETS

    @property
    def is_auto(self) -> bool:
        """True while the backbone is still to be chosen from the data (`p5rec.recipe.resolve`)."""
        return self.backbone == AUTO

    @property
    def hidden_dropout(self) -> float:
        return 0.1 if self.dropout is None else self.dropout

    @property
    def attention_probs_dropout(self) -> float:
        return self.hidden_dropout if self.attention_dropout is None else self.attention_dropout


@dataclass
class LoraSettings:
    """LoRA hyperparameters.

    Args:
        r: rank (default 16).
        alpha: scaling numerator (default 32).
        dropout: dropout on the LoRA path (default 0.05).
        target_modules: module names to adapt; None picks the architecture default above, or
            peft's "all-linear" for architectures not listed.
    """

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"`lora.r` must be >= 1, got {self.r}")
        if self.alpha <= 0:
            raise ValueError(f"`lora.alpha` must be > 0, got {self.alpha}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"`lora.dropout` must be in [0, 1), got {self.dropout}")
