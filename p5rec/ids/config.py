"""How item (and user) IDs are written: one :class:`IdConfig` per run, saved with the model."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any

SCHEMES: tuple[str, ...] = ("random", "sequential", "collaborative", "semantic")
FLAT_SCHEMES: tuple[str, ...] = ("random", "sequential")
HIERARCHICAL_SCHEMES: tuple[str, ...] = ("collaborative", "semantic")
REPRESENTATIONS: tuple[str, ...] = ("text", "tokens")
MAX_DEPTH = 25
_PREFIX = re.compile(r"[A-Za-z][A-Za-z_]*")


@dataclass
class IdConfig:
    """Which ID scheme to build and how to write the IDs.

    Flat schemes give one number per item ("item_12"); hierarchical schemes give a path of
    cluster indices plus an index inside the leaf cluster ("item_3_1_7"), so similar items share
    a prefix and the decoder's trie learns coarse-to-fine choices.

    Args:
        scheme (`str`, defaults to `"sequential"`): `"random"` (seeded permutation, as in P5),
            `"sequential"` (order of first appearance in the training sequences only, so held-out
            items cannot leak into the numbering), `"collaborative"` (recursive spectral clustering
            of the co-occurrence graph, as in OpenP5) or `"semantic"` (hierarchical k-means over
            text embeddings, as in TIGER).
        representation (`str`, defaults to `"tokens"`): `"tokens"` writes IDs as tokens added to the
            tokenizer ("<item_12>" or, for hierarchical schemes, one token per level:
            "<a_3><b_1><c_7>"), so an item is read and scored as one vector; `"text"` writes them as
            plain text ("item_12", "item_3_1_7"), split into digit pieces as P5 did.
        users (`str`, defaults to `"text"`): how user IDs are written, `"text"` ("user_12") or
            `"tokens"` ("<user_12>": one learned vector per user, which a sparse dataset cannot fill
            and which costs vocabulary on a large one).
        prefix (`str`, defaults to `"item_"`): text before the number(s); letters and `_` only,
            so the tokenizer never glues it to the digits.
        seed (`int`, defaults to 0): seeds every random choice (permutation, k-means, eigensolver).
        num_clusters (`int`, defaults to 20): branching factor of each level (hierarchical schemes).
        max_leaf_size (`int`, defaults to 100): clusters larger than this are split again.
        max_depth (`int`, defaults to 6): most cluster levels before the leaf index (<= 25); a
            cluster still too large at this depth becomes one (larger) leaf.
        window (`int`, defaults to 3): two items co-occur when at most this many positions apart
            in a training sequence (collaborative).
        embedding_dim (`int`, defaults to 64): dimensions of the TF-IDF + SVD text embedding
            (semantic, when no `embeddings` are passed).

    >>> IdConfig(scheme="collaborative", num_clusters=10).scheme
    'collaborative'
    """

    scheme: str = "sequential"
    representation: str = "tokens"
    users: str = "text"
    prefix: str = "item_"
    seed: int = 0
    num_clusters: int = 20
    max_leaf_size: int = 100
    max_depth: int = 6
    window: int = 3
    embedding_dim: int = 64

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"`scheme` ({self.scheme!r}) must be one of {list(SCHEMES)}")
        if self.representation not in REPRESENTATIONS:
            raise ValueError(f"`representation` ({self.representation!r}) must be one of {list(REPRESENTATIONS)}")
        if self.users not in REPRESENTATIONS:
            raise ValueError(f"`users` ({self.users!r}) must be one of {list(REPRESENTATIONS)}")
        if not isinstance(self.prefix, str) or not _PREFIX.fullmatch(self.prefix):
            raise ValueError(
                f"`prefix` ({self.prefix!r}) must start with a letter and contain only letters and '_', e.g. 'item_'"
            )
        minimum = {"seed": 0, "num_clusters": 2, "max_leaf_size": 1, "max_depth": 1, "window": 1}
        minimum["embedding_dim"] = 1
        for name in minimum:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"`{name}` must be an int, got {type(value).__name__} ({value!r})")
            if value < minimum[name]:
                raise ValueError(f"`{name}` ({value}) must be >= {minimum[name]}")
        if self.max_depth > MAX_DEPTH:  # one letter per level in the "tokens" representation
            raise ValueError(f"`max_depth` ({self.max_depth}) must be <= {MAX_DEPTH}")

    @property
    def hierarchical(self) -> bool:
        """True for schemes whose IDs are paths of cluster indices."""
        return self.scheme in HIERARCHICAL_SCHEMES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IdConfig:
        """Build from a dict (a saved index, a YAML config); an unknown key is an error, not ignored."""
        if not isinstance(data, dict):
            raise TypeError(f"an ID config must be a dict, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ID config key(s) {unknown}; valid keys are {sorted(known)}")
        return cls(**data)
