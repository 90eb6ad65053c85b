"""Stage 7: P5's metrics per task and template (seen/unseen), baselines, reports."""

from p5rec._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "p5rec.evaluation.config": ("EvalConfig",),
        "p5rec.evaluation.evaluate": ("EvalResult", "evaluate", "evaluate_ranker"),
        "p5rec.evaluation.report": ("build_report", "markdown_table", "write_report"),
    },
)
