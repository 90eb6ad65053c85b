"""The rule for `k` and `num_beams` in item decoding, in one place.

Every caller (the API, `p5rec recommend`, `/recommend`, evaluation) passes its `k`, `num_beams`
and candidate lists through :func:`beam_width`, and the decoder applies it again, so one request
gets one answer whichever way it comes in:

* `k` is a positive integer, at most the catalog size and at most the length of every candidate
  list: a list of 3 candidates cannot fill a top 5, so asking for it is an error, not a shorter
  answer. (Excluding seen items can still leave fewer than `k` allowed items; then fewer come back.)
* `num_beams` left unset is ``max(DEFAULT_NUM_BEAMS, k)``; set, it must be at least `k`, because
  beam search keeps only `num_beams` hypotheses and could not return `k` distinct items.

This module imports nothing heavy: configs validate against it without loading torch.
"""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_NUM_BEAMS = 20  # P5's beam width for item ranking


def beam_width(
    k: int,
    num_beams: int | None = None,
    *,
    num_items: int | None = None,
    candidates: Sequence[Sequence[object] | None] | None = None,
) -> int:
    """The beam width to decode the top `k` items with, after checking `k` and `num_beams`.

    Args:
        k (`int`): how many items to return.
        num_beams (`int`, *optional*): the beam width asked for; None means ``max(DEFAULT_NUM_BEAMS, k)``.
        num_items (`int`, *optional*): the catalog size, when known.
        candidates (*optional*): per request, the candidate list it ranks (None: the whole catalog).

    Raises:
        ValueError: naming the argument, the value and the limit it breaks.

    >>> beam_width(5), beam_width(30), beam_width(5, 8)
    (20, 30, 8)
    >>> beam_width(5, 3)
    Traceback (most recent call last):
    ...
    ValueError: `num_beams` (3) must be >= `k` (5): beam search keeps `num_beams` hypotheses; raise it
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"`k` ({k!r}) must be a positive integer")
    if num_items is not None and k > num_items:
        raise ValueError(f"`k` ({k}) must be an integer between 1 and the catalog size ({num_items})")
    lengths = [len(c) for c in candidates or () if c is not None]
    if lengths and k > min(lengths):
        raise ValueError(
            f"`k` ({k}) must be at most the number of `candidates` ({min(lengths)}): "
            "a candidate list cannot fill a longer answer; ask for fewer items or give more candidates"
        )
    if num_beams is None:
        return max(DEFAULT_NUM_BEAMS, k)
    if isinstance(num_beams, bool) or not isinstance(num_beams, int) or num_beams < 1:
        default = f"max({DEFAULT_NUM_BEAMS}, k)"
        raise ValueError(f"`num_beams` ({num_beams!r}) must be a positive integer (or None for {default})")
    if num_beams < k:
        raise ValueError(
            f"`num_beams` ({num_beams}) must be >= `k` ({k}): beam search keeps `num_beams` hypotheses; raise it"
        )
    return num_beams
