"""Stage 3: tables -> prompt examples: YAML/Jinja templates per task, their checks, one seeded renderer."""

from p5rec._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "p5rec.templates.config": ("ExampleConfig",),
        "p5rec.templates.checks": ("Problem", "TemplateError"),
        "p5rec.templates.files": ("read_template_file", "read_template_file_problems"),
        "p5rec.templates.load": ("TemplateSet",),
        "p5rec.templates.render": ("Example", "ExampleBuilder", "prompt_variables"),
        "p5rec.templates.tasks": ("TASKS", "TaskSpec"),
        "p5rec.templates.template": ("PromptTemplate",),
        "p5rec.templates.validate": ("validate_paths", "validate_templates"),
    },
)
