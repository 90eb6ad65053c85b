"""Stage 1: raw files -> canonical tables (items, interactions), splits and the synthetic dataset."""

from p5rec._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "p5rec.data.build": ("build_recdata",),
        "p5rec.data.config": ("SyntheticConfig",),
        "p5rec.data.download": ("download_dataset",),
        "p5rec.data.export": ("export_recbole",),
        "p5rec.data.prepare": ("format_stats", "prepare_dataset"),
        "p5rec.data.split": ("Splits", "sample_negatives"),
        "p5rec.data.synthetic": ("generate",),
        "p5rec.data.tables": ("RecData",),
    },
)
