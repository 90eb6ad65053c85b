"""Stage 2: item and user ID schemes: random, sequential (leak-free), collaborative and semantic."""

from p5rec._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "p5rec.ids.config": ("IdConfig",),
        "p5rec.ids.index": ("ItemIndex", "UserIndex", "render_id"),
        "p5rec.ids.semantic": ("item_texts",),
    },
)
