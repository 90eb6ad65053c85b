"""Explanation and summary targets, extracted from reviews without any external model.

P5 took its explanation targets from the Sentires toolkit (Zhang et al., SIGIR 2014): a
(feature, opinion, sentence) triple per review, where the feature is a product aspect ("sound
quality") that a sentiment word ("great") describes. This module is a small, deterministic
stand-in written in plain Python:

1. Split a review into sentences and tokens (words and punctuation; punctuation breaks patterns).
2. Find opinion patterns with a built-in lexicon of positive and negative adjectives:

   * ``OPINION FEATURE [FEATURE]``: "great sound", "nice sound quality";
   * ``FEATURE [FEATURE] COPULA [ADVERB...] OPINION``: "the tuner is very accurate",
     "these strings sound great", "the clamp works well".

   A feature word is "noun-ish": alphabetic, at least 3 letters, not a stopword, not an opinion
   word, not an adverb (``-ly``) or one of the copulas/intensifiers.
3. Count candidate features (unigrams and bigrams) over the whole dataset
   (:class:`FeatureCounter`) and keep the frequent ones as the dataset's feature vocabulary.
4. For each review, pick the match whose feature is most frequent in the vocabulary (ties: the
   earliest in the review); its sentence is the explanation target (:class:`ExplanationExtractor`).

The result is the same on every run for the same input: no randomness, no model, no hash order.

Summaries are review titles. Many are boilerplate ("Five Stars" is Amazon's auto-filled title for
star-only reviews); :func:`clean_summary` blanks those so summarization is trained on real titles.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

POSITIVE_OPINIONS = frozenset(
    """good great excellent nice perfect awesome amazing wonderful fantastic superb outstanding solid
    sturdy durable comfortable easy clear crisp bright warm rich smooth quiet strong reliable accurate
    beautiful lovely fine decent affordable inexpensive reasonable fast quick handy useful convenient
    compact lightweight soft sharp clean fun impressive terrific fabulous gorgeous elegant responsive
    stable sweet secure consistent versatile functional excellant best better favorite superior
    stylish cool incredible exceptional flawless classy pleasant gentle precise tasty delicious fresh
    thick tight bold vibrant sleek simple intuitive helpful friendly professional well""".split()
)
NEGATIVE_OPINIONS = frozenset(
    """bad poor terrible awful horrible cheap flimsy weak broken defective useless noisy harsh thin
    muddy dull difficult uncomfortable heavy expensive overpriced slow loose fragile disappointing
    mediocre faulty worse worst annoying inaccurate unreliable unstable tinny buzzy flat sloppy
    awkward clunky confusing inconsistent unusable bulky stiff rough scratchy sticky wobbly shoddy
    lousy crappy junky ugly rude dirty stale bland""".split()
)
OPINION_WORDS = POSITIVE_OPINIONS | NEGATIVE_OPINIONS

# Words that link a feature to the opinion after it ("the tone IS great", "strings SOUND great").
COPULAS = frozenset(
    """is are was were be been being seems seem seemed looks look looked feels feel felt sounds
    sounded works work worked performs performed holds held stays stayed plays played""".split()
)
# Plural verbs that also act as copulas ("these strings SOUND great") but are nouns elsewhere
# ("great sound"): they link a feature to an opinion without being excluded as features.
LINKING_NOUNS = frozenset({"sound", "look", "feel"})
# Allowed between a copula and its opinion word ("is VERY good", "was NOT TOO bad").
INTENSIFIERS = frozenset(
    """very really so quite extremely super too incredibly fairly rather not also still just
    absolutely surprisingly reasonably amazingly pretty real definitely always even overall""".split()
)
STOPWORDS = frozenset(
    """a an the and or but if then than so as of at by for with about against between into through
    during before after above below to from up down in out on off over under again further once here
    there when where why how all any both each few more most other some such no nor not only own same
    too very can will just don should now i me my myself we our ours you your yours he him his she
    her hers it its itself they them their theirs what which who whom this that these those am is are
    was were be been being have has had having do does did doing would could might must shall may one
    ones thing things lot lots bit way product item items stuff amazon price star stars time times
    also get got use used using buy bought make made need needs say said going go goes went come came
    take took put see seen think thought know knew want wanted try tried give gave find found keep kept
    like love loved recommend recommended purchase purchased order ordered work works worked
    really much many still even ever every never always something anything everything nothing first
    last new old little big lot since while yet though although however because enough else back
    sure able sounding looking feeling built worth priced designed constructed done""".split()
)
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
# A sentence ends at . ! ? followed by a space or a capital ("affordable.I did"), or at a newline.
_SENTENCE_END = re.compile(r"([.!?])(?:\s+|(?=[A-Z]))|\n+")

DEFAULT_MAX_WORDS = 40  # longer sentences are not used as explanation targets
# One opinion match: (sentence index, unigram feature, bigram feature or "", sentence short enough).
Candidate = tuple[int, str, str, bool]


def split_sentences(review: str) -> list[str]:
    """Split on sentence punctuation (also when a space is missing: "affordable.I did") and newlines."""
    parts = _SENTENCE_END.split(review)  # [text, end mark or None, text, ...]
    sentences = []
    for i in range(0, len(parts), 2):
        sentence = (parts[i] + (parts[i + 1] or "" if i + 1 < len(parts) else "")).strip()
        if sentence:
            sentences.append(sentence)
    return sentences


def tokenize(sentence: str) -> list[str]:
    """Lowercased words and single punctuation marks; punctuation stays so patterns cannot cross it."""
    return _TOKEN.findall(sentence.lower())


def is_feature_word(token: str) -> bool:
    """Noun-ish heuristic: a content word that is not an opinion, adverb, copula or stopword."""
    return (
        len(token) >= 3
        and token.isalpha()
        and token not in STOPWORDS
        and token not in OPINION_WORDS
        and token not in COPULAS
        and token not in INTENSIFIERS
        and not token.endswith("ly")
    )


def find_candidates(tokens: list[str]) -> list[tuple[str, str]]:
    """All (unigram, bigram-or-"") feature candidates of opinion patterns in one sentence, in order.

    >>> find_candidates(tokenize("Great sound quality, and the tuner is very accurate."))
    [('sound', 'sound quality'), ('tuner', '')]
    """
    found: list[tuple[str, str]] = []
    n = len(tokens)
    for j, tok in enumerate(tokens):
        if tok not in OPINION_WORDS:
            continue
        # OPINION FEATURE [FEATURE]
        if j + 1 < n and is_feature_word(tokens[j + 1]):
            bigram = f"{tokens[j + 1]} {tokens[j + 2]}" if j + 2 < n and is_feature_word(tokens[j + 2]) else ""
            found.append((tokens[j + 1], bigram))
            continue
        # FEATURE [FEATURE] COPULA [INTENSIFIER...] OPINION
        k = j - 1
        while k >= 0 and tokens[k] in INTENSIFIERS:
            k -= 1
        if k >= 1 and (tokens[k] in COPULAS or tokens[k] in LINKING_NOUNS) and is_feature_word(tokens[k - 1]):
            head = tokens[k - 1]
            bigram = f"{tokens[k - 2]} {head}" if k >= 2 and is_feature_word(tokens[k - 2]) else ""
            found.append((head, bigram))
    return found


def scan_review(review: str, max_words: int = DEFAULT_MAX_WORDS) -> list[Candidate]:
    """Every opinion-pattern match of a review, with its sentence index and whether that sentence has
    at most `max_words` tokens (longer ones are counted as features but not used as explanations).

    Scanning once and keeping the matches lets a pipeline count features and later pick
    explanations without tokenizing each review twice.
    """
    found: list[Candidate] = []
    for index, sentence in enumerate(split_sentences(review)):
        tokens = tokenize(sentence)
        if OPINION_WORDS.isdisjoint(tokens):  # most sentences: skip the pattern scan
            continue
        short = len(tokens) <= max_words
        found.extend((index, unigram, bigram, short) for unigram, bigram in find_candidates(tokens))
    return found


class FeatureCounter:
    """Counts candidate features over a stream of reviews, in bounded memory.

    When more than `max_keys` distinct candidates are held, the rarest are dropped (lossy counting:
    a feature that survives to the vocabulary is frequent, so losing early singletons is harmless).
    The pruning depends only on the input order, so the result is still deterministic.

    Args:
        max_keys: the most distinct candidates kept in memory (default 1,000,000).
    """

    def __init__(self, max_keys: int = 1_000_000) -> None:
        if max_keys < 1:
            raise ValueError(f"`max_keys` ({max_keys}) must be >= 1")
        self.max_keys = max_keys
        self.counts: Counter[str] = Counter()
        self._floor = 1

    def add(self, review: str) -> None:
        self.add_candidates(scan_review(review))

    def add_candidates(self, candidates: list[Candidate]) -> None:
        """Count the matches of one review, as returned by :func:`scan_review`."""
        for _, unigram, bigram, _ in candidates:
            self.counts[unigram] += 1
            if bigram:
                self.counts[bigram] += 1
        if len(self.counts) > self.max_keys:
            self._prune()

    def _prune(self) -> None:
        while len(self.counts) > self.max_keys // 2:
            self.counts = Counter({k: c for k, c in self.counts.items() if c > self._floor})
            self._floor += 1

    def vocabulary(self, min_count: int = 5, max_features: int = 5000) -> dict[str, int]:
        """The `max_features` most frequent candidates seen at least `min_count` times, with counts.

        Args:
            min_count: the fewest occurrences for a feature to be kept (default 5).
            max_features: the vocabulary size cap (default 5000); ties are broken alphabetically.
        """
        ranked = sorted((item for item in self.counts.items() if item[1] >= min_count), key=lambda kv: (-kv[1], kv[0]))
        return dict(ranked[:max_features])


class ExplanationExtractor:
    """Picks one (feature, sentence) explanation per review, given a dataset's feature vocabulary.

    Args:
        vocabulary: feature -> frequency, from :meth:`FeatureCounter.vocabulary`.
        max_words: sentences with more words than this are not used as explanations (default 40):
            run-on text makes a poor generation target.

    >>> extractor = ExplanationExtractor({"sound": 9, "sound quality": 4, "tuner": 6})
    >>> extractor.extract("Works fine. Great sound quality! The tuner is very accurate.")
    ('sound quality', 'Great sound quality!')
    """

    def __init__(self, vocabulary: dict[str, int], max_words: int = DEFAULT_MAX_WORDS) -> None:
        self.vocabulary = dict(vocabulary)
        self.max_words = max_words

    def choose(self, candidates: list[Candidate]) -> tuple[str, int] | None:
        """(feature, sentence index) of the best match among a review's :func:`scan_review` output.

        Rank by the head word's frequency (the aspect), but name the more specific bigram when
        it is in the vocabulary too: "sound quality" rather than "sound". Ties: the earliest match.
        """
        best: tuple[int, str, int] | None = None
        vocab = self.vocabulary
        for index, unigram, bigram, short in candidates:
            if not short:
                continue
            score = max(vocab.get(unigram, 0), vocab.get(bigram, 0))
            if score > 0 and (best is None or score > best[0]):
                best = (score, bigram if bigram in vocab else unigram, index)
        return None if best is None else (best[1], best[2])

    def extract(self, review: str) -> tuple[str, str] | None:
        """The most frequent vocabulary feature found in an opinion pattern, and its sentence."""
        if not review or not self.vocabulary:
            return None
        chosen = self.choose(scan_review(review, self.max_words))
        return None if chosen is None else (chosen[0], split_sentences(review)[chosen[1]])


# Generic titles that say nothing about the item (compared lowercased, without end punctuation).
GENERIC_SUMMARIES = frozenset(
    phrase.strip()
    for phrase in """great product|good product|nice product|excellent product|great item|good item|nice item|
    love it|i love it|love this|works great|works well|works fine|it works|does the job|as described|
    as advertised|as expected|very good|very nice|pretty good|not bad|just ok|great buy|good buy|
    great deal|good deal|great price|good price|great value|good value|highly recommend|
    highly recommended|great quality|good quality|must have|so far so good|worth it|very happy|
    great stuff|good stuff|thank you|thanks|perfect|excellent|awesome|great|good|nice""".split("|")
)
_STAR_PHRASE = re.compile(r"^(?:one|two|three|four|five|[1-5])(?:\.0)?[\s-]*stars?$")


def clean_summary(title: str) -> str:
    """The review title, or "" when it is boilerplate.

    Boilerplate is (1) a star phrase ("Five Stars", "4 stars": Amazon fills these in for reviews
    left without a title), (2) a title of fewer than 2 words ("Great!", "A+++"), or (3) one of
    :data:`GENERIC_SUMMARIES` ("Works great", "Love it"). Matching ignores case, surrounding
    whitespace and end punctuation.

    >>> clean_summary("Five Stars"), clean_summary("Great!"), clean_summary("Great strings for the price")
    ('', '', 'Great strings for the price')
    """
    title = " ".join(title.split())
    key = title.lower().strip(" .!?,;:*-~")
    words = [w for w in re.split(r"\s+", key) if any(ch.isalnum() for ch in w)]
    if len(words) < 2 or _STAR_PHRASE.match(key) or key in GENERIC_SUMMARIES:
        return ""
    return title


def summary_survival(titles: Iterable[str]) -> tuple[int, int]:
    """(non-empty titles, titles kept by :func:`clean_summary`), for reporting."""
    total = kept = 0
    for title in titles:
        if title:
            total += 1
            kept += bool(clean_summary(title))
    return total, kept
