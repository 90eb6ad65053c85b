"""p5rec: P5-style recommendation with one language model for every task.

>>> from p5rec import Recommender, RunConfig, fit                      # doctest: +SKIP
>>> fit(RunConfig()).recommender.save_pretrained("runs/my-model")     # doctest: +SKIP
>>> Recommender.from_pretrained("runs/my-model").recommend(user="U00000", k=5)  # doctest: +SKIP

Names are imported on first use, so `import p5rec` (or a config module) does not load torch.
"""

from p5rec._lazy import lazy_exports

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "p5rec.api": ("Recommendations", "RecommendedItem", "Recommender"),
        "p5rec.config": ("DataConfig", "RunConfig"),
        "p5rec.data.config": ("SyntheticConfig",),
        "p5rec.data.prepare": ("prepare_dataset",),
        "p5rec.data.tables": ("RecData",),
        "p5rec.evaluation.config": ("EvalConfig",),
        "p5rec.evaluation.evaluate": ("evaluate",),
        "p5rec.ids.config": ("IdConfig",),
        "p5rec.ids.index": ("ItemIndex", "UserIndex"),
        "p5rec.modeling.config": ("LoraSettings", "ModelConfig"),
        "p5rec.pipeline": ("FitResult", "fit"),
        "p5rec.templates.config": ("ExampleConfig",),
        "p5rec.templates.load": ("TemplateSet",),
        "p5rec.templates.template": ("PromptTemplate",),
        "p5rec.training.config": ("TrainConfig",),
    },
)
