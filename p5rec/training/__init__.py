"""Stage 5: one accelerate loop over the task mixture: checkpoints, resume, validation, task weights."""

from p5rec._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "p5rec.training.config": ("TrainConfig",),
        "p5rec.training.mixture": ("MixedExamples",),
        "p5rec.training.trainer": ("TrainResult", "train"),
    },
)
