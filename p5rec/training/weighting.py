"""Per-task losses and learned task weights (uncertainty weighting, Kendall et al. 2018).

"Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry and Semantics"
(Kendall, Gal, Cipolla, CVPR 2018) learns one log-variance s_t per task and minimizes

    L = sum_t exp(-s_t) * L_t + s_t

so a task whose loss stays high (noisy, e.g. free-text explanation) gets a smaller weight
exp(-s_t), while the + s_t term keeps the weights from collapsing to zero. P5 mixes tasks with
fixed sampling multipliers (`ExampleConfig.task_weights`); this learns the loss weights on top.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from p5rec.templates.tasks import TASKS
from p5rec.training.config import GROUPINGS


def loss_groups(grouping: str) -> list[str]:
    """The names of the loss groups, in a fixed order: P5 families or single tasks."""
    if grouping not in GROUPINGS:
        raise ValueError(f"`weighting_groups` must be one of {GROUPINGS}, got {grouping!r}")
    if grouping == "task":
        return list(TASKS)
    return list(dict.fromkeys(spec.family for spec in TASKS.values()))


def group_of(task: str, grouping: str) -> str:
    """The loss group of `task` under `grouping`."""
    return task if grouping == "task" else TASKS[task].family


def per_example_loss(logits: torch.Tensor, labels: torch.Tensor, encoder_decoder: bool) -> torch.Tensor:
    """Token-mean cross-entropy per example: (B, T, V) logits, (B, T) labels (-100 ignored) -> (B,).

    Decoder-only models predict token t+1 at position t, so logits and labels are shifted as the
    Hugging Face causal-LM loss does; encoder-decoder logits already line up with their labels.
    """
    if not encoder_decoder:
        logits, labels = logits[:, :-1], labels[:, 1:]
    tokens = F.cross_entropy(logits.transpose(1, 2).float(), labels, ignore_index=-100, reduction="none")  # (B, T)
    mask = (labels != -100).to(tokens.dtype)
    return (tokens * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def group_means(values: torch.Tensor, groups: torch.Tensor, num_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of `values` (B,) per group id in `groups` (B,) -> (G,) means and a (G,) mask of groups present."""
    sums = torch.zeros(num_groups, dtype=values.dtype, device=values.device).index_add(0, groups, values)
    counts = torch.zeros(num_groups, dtype=values.dtype, device=values.device).index_add(
        0, groups, torch.ones_like(values)
    )
    return sums / counts.clamp(min=1.0), counts > 0


class UncertaintyWeighting(nn.Module):
    """Learned loss weights exp(-s_t), one log-variance s_t per group, all starting at 0 (weight 1).

    Args:
        names: the group names (task families or tasks), in the order of the group ids.

    >>> w = UncertaintyWeighting(["rating", "sequential"])
    >>> float(w(torch.tensor([2.0, 1.0]), torch.tensor([True, True])))
    3.0
    """

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__()
        if not names:
            raise ValueError("`names` must name at least one loss group")
        self.names = list(names)
        self.log_vars = nn.Parameter(torch.zeros(len(self.names)))

    def forward(self, group_losses: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """sum over groups present in the batch of exp(-s_t) * L_t + s_t.

        Absent groups are multiplied by 0 rather than dropped, so every s_t stays in the graph
        (its gradient is then exactly 0) and data-parallel gradient reduction sees every parameter.
        """
        terms = torch.exp(-self.log_vars) * group_losses + self.log_vars
        return (terms * present.to(terms.dtype)).sum()

    def weights(self) -> dict[str, float]:
        """The current weight exp(-s_t) of each group, by name."""
        return {n: float(w) for n, w in zip(self.names, torch.exp(-self.log_vars.detach()).tolist())}
