"""Several datasets in one training run: each renders its own examples, the epochs are concatenated.

Multi-domain training (one model for, say, Musical Instruments and Gift Cards) needs nothing more
in the loop than one example list per epoch. IDs stay apart because each dataset gets its own ID
prefix ("a_item_12" vs "b_item_12", see `pipeline.prepare_domains`), so a prompt always names
items of one domain and the per-domain decoding trie only ever allows that domain's items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from p5rec.templates.render import Example
from p5rec.training.epochs import ExampleSource, plan_of


class MixedExamples:
    """Concatenate the training examples of several builders, each epoch, in a seeded shuffled order.

    Args:
        sources: one example builder per dataset (`ExampleBuilder`), rendered in this order from
            the same generator, so the mixture is as reproducible as a single builder.

    >>> class One:
    ...     def __init__(self, name): self.name = name
    ...     def train_examples(self, rng): return [self.name]
    >>> sorted(MixedExamples([One("a"), One("b")]).train_examples(np.random.default_rng(0)))
    ['a', 'b']
    """

    def __init__(self, sources: Sequence[ExampleSource]) -> None:
        if not sources:
            raise ValueError("`sources` must hold at least one example builder")
        self.sources = list(sources)

    def train_examples(self, rng: np.random.Generator) -> list[Example]:
        return [render() for render in self.train_plan(rng)]

    def train_plan(self, rng: np.random.Generator) -> list[Callable[[], Example]]:
        """:meth:`train_examples` not yet rendered (see `ExampleBuilder.train_plan`): every source's
        plan, from the same generator in turn, then shuffled."""
        out: list[Callable[[], Example]] = []
        for source in self.sources:
            out += plan_of(source, rng)
        return [out[i] for i in rng.permutation(len(out))]
