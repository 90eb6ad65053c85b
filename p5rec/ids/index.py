"""Raw ID <-> ID string <-> position <-> token sequence, for items and users, built once per run and
saved with the model.

An index stores its config and one integer code per entity (a number for flat schemes, a path
for hierarchical ones); the ID strings are rendered from them, so the text and token forms of
the same index cannot disagree. It is the one owner of an entity's identity: the renderer writes
prompts with it, the predictor builds its trie from its token sequences and returns positions in
it, evaluation and the API map raw IDs to positions and back through it, and its check of an
unknown ID (:meth:`_Index.check`) is the one error a user sees.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from p5rec._atomic import write_text
from p5rec.ids.collaborative import collaborative_paths
from p5rec.ids.config import FLAT_SCHEMES, IdConfig
from p5rec.ids.semantic import item_texts as texts_of
from p5rec.ids.semantic import semantic_paths, text_embeddings

if TYPE_CHECKING:  # importing `datasets` is slow; only the type is needed here
    from p5rec.data.tables import RecData

_FORMAT_VERSION = 1
_LEVELS = "abcdefghijklmnopqrstuvwxyz"


def render_id(code: Sequence[int], config: IdConfig) -> str:
    """Write one code as an ID string: "item_12", "item_3_1_7", "<item_12>" or "<a_3><b_1><c_7>"."""
    if config.hierarchical:
        if config.representation == "tokens":
            return "".join(f"<{_LEVELS[level]}_{c}>" for level, c in enumerate(code))
        return config.prefix + "_".join(str(c) for c in code)
    text = f"{config.prefix}{code[0]}"
    return f"<{text}>" if config.representation == "tokens" else text


class _Index:
    """Shared map logic; subclasses say what they index (`_kind`) and how they are built."""

    _kind: ClassVar[str] = "entity"

    def __init__(self, config: IdConfig, raw_ids: Sequence[str], codes: Sequence[Sequence[int]]) -> None:
        if len(raw_ids) != len(codes):
            raise ValueError(f"{len(raw_ids)} raw {self._kind} IDs but {len(codes)} codes")
        self.config = config
        self._raw = list(raw_ids)
        self._codes = [tuple(int(c) for c in code) for code in codes]
        self._ids = [render_id(code, config) for code in self._codes]
        self._by_raw = {raw: i for i, raw in enumerate(self._raw)}
        self._by_id = {s: i for i, s in enumerate(self._ids)}
        if len(self._by_raw) != len(self._raw):
            raise ValueError(f"duplicate raw {self._kind} ID {_first_duplicate(self._raw)!r}")
        if len(self._by_id) != len(self._ids):
            raise ValueError(f"duplicate {self._kind} ID string {_first_duplicate(self._ids)!r}")

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, raw: object) -> bool:
        return raw in self._by_raw

    def __repr__(self) -> str:
        c = self.config
        name = type(self).__name__
        return f"{name}({len(self)} {self._kind}s, scheme={c.scheme!r}, representation={c.representation!r})"

    def __eq__(self, other: object) -> bool:
        """Same kind, scheme, raw IDs (in order) and codes: the same IDs at the same positions."""
        if not isinstance(other, _Index):
            return NotImplemented
        same = type(self) is type(other) and self.config == other.config
        return same and self._raw == other._raw and self._codes == other._codes

    __hash__ = None  # mutable-looking value object: compared, never used as a key

    def _unknown(self, unknown: Sequence[object], what: str | None) -> KeyError:
        """The one error for IDs this index does not hold, naming them and the argument they came in."""
        shown = repr(unknown[0]) if len(unknown) == 1 else f"{self._kind}s {list(unknown[:5])}"
        if len(unknown) == 1:
            shown = f"{self._kind} {shown}"
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        where = f" in `{what}`" if what else ""
        return KeyError(f"unknown {shown}{more}{where} ({self._not_found()})")

    def _not_found(self) -> str:
        return f"not among the {len(self)} indexed {self._kind}s"

    def check(self, raws: Sequence[str], what: str) -> list[str]:
        """`raws` as a list, after checking it is a list of strings this index holds.

        Args:
            raws: raw IDs, e.g. a user's history.
            what: the argument they came in (``"history"``, ``"--candidates"``), for the message.

        Raises:
            TypeError: `raws` is not a list of strings.
            KeyError: some are unknown; the message names them and `what`.
        """
        if isinstance(raws, (str, bytes)) or not isinstance(raws, Sequence):
            raise TypeError(f"`{what}` must be a list of {self._kind} IDs, got {raws!r:.80}")
        wrong = [r for r in raws if not isinstance(r, str)]
        if wrong:
            raise TypeError(
                f"`{what}` must hold {self._kind} IDs as strings, got {wrong[0]!r} ({type(wrong[0]).__name__})"
            )
        unknown = list(dict.fromkeys(r for r in raws if r not in self._by_raw))
        if unknown:
            raise self._unknown(unknown, what)
        return list(raws)

    def id_of(self, raw: str, what: str | None = None) -> str:
        """The ID string of raw ID `raw`; KeyError names it (and the argument `what`) when it is not indexed."""
        i = self._by_raw.get(raw)
        if i is None:
            raise self._unknown([raw], what)
        return self._ids[i]

    def position(self, raw: str, what: str | None = None) -> int:
        """Where `raw` sits in the index (catalog order for items): the row of the decoder's trie."""
        i = self._by_raw.get(raw)
        if i is None:
            raise self._unknown([raw], what)
        return i

    def positions(self, raws: Sequence[str], what: str) -> list[int]:
        """:meth:`position` of each of `raws`, after :meth:`check`."""
        return [self._by_raw[r] for r in self.check(raws, what)]

    def raw_at(self, position: int) -> str:
        """The raw ID at `position` (e.g. a ranked result of the decoder)."""
        return self._raw[position]

    def id_at(self, position: int) -> str:
        """The ID string at `position`: the one the trie spells out for that row."""
        return self._ids[position]

    def raw_of(self, id_string: str) -> str:
        """The raw ID behind `id_string` (e.g. a generated ID); KeyError names it when invalid."""
        i = self._by_id.get(id_string)
        if i is None:
            raise KeyError(f"unknown {self._kind} ID string {id_string!r}: no {self._kind} has this ID")
        return self._raw[i]

    def code_of(self, raw: str) -> tuple[int, ...]:
        """The integer code of `raw`: `(number,)` for flat schemes, the cluster path otherwise."""
        return self._codes[self.position(raw)]

    def raw_ids(self) -> list[str]:
        """Raw IDs in index order (catalog order for items)."""
        return list(self._raw)

    def id_strings(self) -> list[str]:
        """ID strings aligned with :meth:`raw_ids`: the decoder's trie is built from these."""
        return list(self._ids)

    def token_sequences(self, tokenizer: Any) -> list[list[int]]:
        """Each ID string as `tokenizer` spells it (no special tokens), in index order.

        Training tokenizes targets the same way, so the decoder's trie (built from these) accepts
        exactly the sequences the model learned to write.
        """
        return tokenizer(self._ids, add_special_tokens=False)["input_ids"]

    def new_tokens(self) -> list[str]:
        """Tokens to add to the tokenizer: none for `"text"`, else every ID (level) token in a fixed order.

        Flat schemes give one token per entity, by number; hierarchical schemes give one token
        per (level, index) used, by level then index.
        """
        if self.config.representation == "text":
            return []
        if not self.config.hierarchical:
            return [self._ids[i] for i in sorted(range(len(self)), key=lambda i: self._codes[i][0])]
        used = sorted({(level, c) for code in self._codes for level, c in enumerate(code)})
        return [f"<{_LEVELS[level]}_{c}>" for level, c in used]

    # -------------------------------------------------------------------- disk
    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": _FORMAT_VERSION,
            "kind": self._kind,
            "config": self.config.to_dict(),
            "raw_ids": self._raw,
            "codes": [list(code) for code in self._codes],
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write JSON atomically (`p5rec._atomic`), so no reader sees half a file."""
        write_text(path, json.dumps(self.to_dict(), separators=(",", ":")))

    @classmethod
    def load(cls: type[_IndexT], path: str | os.PathLike) -> _IndexT:
        """Read an index written by :meth:`save`; errors name the file and what is wrong."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no {cls._kind} index file here (write one with `.save(path)`)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not a valid {cls._kind} index file ({e})") from e
        if not isinstance(data, dict) or data.get("kind") != cls._kind:
            kind = data.get("kind") if isinstance(data, dict) else None
            raise ValueError(f"{path}: expected a {cls._kind} index, found kind {kind!r}")
        if data.get("format_version", 0) > _FORMAT_VERSION:
            raise ValueError(
                f"{path}: index format {data['format_version']} is newer than this p5rec reads "
                f"({_FORMAT_VERSION}); upgrade p5rec"
            )
        missing = [k for k in ("config", "raw_ids", "codes") if k not in data]
        if missing:
            raise ValueError(f"{path}: the index file lacks {missing}")
        try:
            return cls(IdConfig.from_dict(data["config"]), data["raw_ids"], data["codes"])
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from e


_IndexT = TypeVar("_IndexT", bound=_Index)


class ItemIndex(_Index):
    """Raw item ID <-> ID string under one scheme.

    Build it from the TRAINING part of each sequence only (`seq[:-2]` with leave-one-out):
    sequential and collaborative IDs are derived from the sequences they are given, and
    numbering that saw the held-out items would leak them into the model's vocabulary.

    >>> index = ItemIndex.build(IdConfig("sequential"), ["a", "b", "c"], {"u1": ["c", "a"]})
    >>> [index.id_of(raw) for raw in ["a", "b", "c"]]
    ['item_2', 'item_3', 'item_1']
    >>> index.raw_of("item_1")
    'c'
    """

    _kind = "item"

    def _not_found(self) -> str:
        return f"not in the catalog of {len(self)} items"

    @classmethod
    def build(
        cls,
        config: IdConfig | None,
        item_ids: Sequence[str],
        train_sequences: Mapping[str, Sequence[str]],
        item_texts: Mapping[str, str] | None = None,
        embeddings: np.ndarray | None = None,
    ) -> ItemIndex:
        """Assign every catalog item an ID string.

        Args:
            config (`IdConfig` or None): the scheme; None means `IdConfig()` (sequential text IDs).
            item_ids (`Sequence[str]`): the catalog, in a fixed order (ties and unseen items follow it).
            train_sequences (`Mapping[str, Sequence[str]]`): user -> training items in time order;
                used by "sequential" and "collaborative". Every item must be in `item_ids`.
            item_texts (`Mapping[str, str]`, optional): raw ID -> text ("semantic" without
                `embeddings`); items missing here count as having no text.
            embeddings (`np.ndarray`, optional): (len(item_ids), d) vectors aligned with `item_ids`
                ("semantic"); rows are scaled to unit length before clustering.
        """
        config = config if config is not None else IdConfig()
        if not isinstance(config, IdConfig):
            raise TypeError(f"`config` must be an IdConfig, got {type(config).__name__}")
        items = _check_ids(item_ids, "item_ids")
        _check_sequences(train_sequences, set(items))
        codes: list[tuple[int, ...]]
        if config.scheme == "random":
            codes = _random_codes(len(items), config.seed)
        elif config.scheme == "sequential":
            order = dict.fromkeys(raw for seq in train_sequences.values() for raw in seq)
            order.update(dict.fromkeys(items))  # unseen items follow, in catalog order
            number = {raw: k for k, raw in enumerate(order, start=1)}
            codes = [(number[raw],) for raw in items]
        elif config.scheme == "collaborative":
            codes = collaborative_paths(
                items,
                train_sequences,
                num_clusters=config.num_clusters,
                max_leaf_size=config.max_leaf_size,
                max_depth=config.max_depth,
                window=config.window,
                seed=config.seed,
            )
        else:  # semantic
            emb = _semantic_inputs(config, items, item_texts, embeddings)
            codes = semantic_paths(
                emb,
                num_clusters=config.num_clusters,
                max_leaf_size=config.max_leaf_size,
                max_depth=config.max_depth,
                seed=config.seed,
            )
        return cls(config, items, codes)

    @classmethod
    def from_data(
        cls, config: IdConfig | None, data: RecData, train_sequences: Mapping[str, Sequence[str]]
    ) -> ItemIndex:
        """Build over `data`'s catalog, with its item texts for the semantic scheme.

        Args:
            config (`IdConfig` or None): the scheme (None: sequential text IDs).
            data (`RecData`): the dataset whose catalog is indexed.
            train_sequences (`Mapping[str, Sequence[str]]`): training items per user (`seq[:-2]`).
        """
        texts = texts_of(data) if config is not None and config.scheme == "semantic" else None
        return cls.build(config, data.item_ids, train_sequences, item_texts=texts)


class UserIndex(_Index):
    """Raw user ID <-> ID string ("user_12"), numbered randomly (seeded) or by first appearance.

    >>> UserIndex.build(["ann", "bob"]).id_of("bob")
    'user_2'
    """

    _kind = "user"

    def _not_found(self) -> str:
        hint = "for a new user, give their `history` (cold start)"
        return f"not among the {len(self)} users of the training data; {hint}"

    @classmethod
    def build(
        cls,
        user_ids: Iterable[str],
        scheme: str = "sequential",
        representation: str = "text",
        prefix: str = "user_",
        seed: int = 0,
    ) -> UserIndex:
        """Number users 1..N.

        Args:
            user_ids (`Iterable[str]`): users in order of first appearance; repeats are ignored.
            scheme (`str`, defaults to `"sequential"`): `"sequential"` (in the given order) or
                `"random"` (a seeded permutation).
            representation (`str`, defaults to `"text"`): `"text"` ("user_12") or `"tokens"` ("<user_12>").
            prefix (`str`, defaults to `"user_"`): text before the number.
            seed (`int`, defaults to 0): seeds the permutation.
        """
        if scheme not in FLAT_SCHEMES:
            raise ValueError(f"`scheme` ({scheme!r}) for users must be one of {list(FLAT_SCHEMES)}")
        config = IdConfig(scheme=scheme, representation=representation, prefix=prefix, seed=seed)
        if isinstance(user_ids, str):
            raise TypeError("`user_ids` must be an iterable of user IDs, not a single string")
        users = list(dict.fromkeys(user_ids))
        _check_ids(users, "user_ids")
        if scheme == "random":
            codes = _random_codes(len(users), seed)
        else:
            codes = [(k,) for k in range(1, len(users) + 1)]
        return cls(config, users, codes)


def _random_codes(n: int, seed: int) -> list[tuple[int, ...]]:
    """A seeded permutation of 1..n, as P5 numbered items."""
    perm = np.random.default_rng(seed).permutation(n) + 1
    return [(int(k),) for k in perm]


def _check_ids(ids: Sequence[str], name: str) -> list[str]:
    ids = list(ids)
    if not ids:
        raise ValueError(f"`{name}` is empty: there is nothing to index")
    for x in ids:
        if not isinstance(x, str):
            raise TypeError(f"`{name}` must hold strings, got {type(x).__name__} ({x!r})")
        if not x:
            raise ValueError(f"`{name}` holds an empty string; every ID must be non-empty")
    if len(set(ids)) != len(ids):
        raise ValueError(f"`{name}` holds {_first_duplicate(ids)!r} more than once; IDs must be unique")
    return ids


def _check_sequences(train_sequences: Mapping[str, Sequence[str]], catalog: set[str]) -> None:
    if not isinstance(train_sequences, Mapping):
        kind = type(train_sequences).__name__
        raise TypeError(f"`train_sequences` must map user -> list of items, got {kind}")
    for user, seq in train_sequences.items():
        if isinstance(seq, str):
            raise TypeError(f"`train_sequences[{user!r}]` must be a list of items, got the string {seq!r}")
        for raw in seq:
            if raw not in catalog:
                raise KeyError(f"`train_sequences[{user!r}]` holds item {raw!r}, which is not in `item_ids`")


def _first_duplicate(values: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            return v
        seen.add(v)
    return None


def _semantic_inputs(
    config: IdConfig, items: list[str], texts: Mapping[str, str] | None, embeddings: np.ndarray | None
) -> np.ndarray:
    if embeddings is not None:
        emb = np.asarray(embeddings)
        if emb.ndim != 2 or emb.shape[0] != len(items):
            raise ValueError(f"`embeddings` must have shape (len(item_ids), d) = ({len(items)}, d), got {emb.shape}")
        if not np.issubdtype(emb.dtype, np.number) or not np.isfinite(emb).all():
            raise ValueError("`embeddings` must be finite numbers (found NaN, inf or a non-numeric dtype)")
        return emb
    if texts is None:
        raise ValueError(
            "the semantic scheme needs `item_texts` (raw ID -> title + category + description) "
            "or `embeddings`; pass one of them"
        )
    return text_embeddings([texts.get(raw, "") for raw in items], config.embedding_dim, config.seed)
