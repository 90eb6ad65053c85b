"""`p5rec prompts`: list, show, render and validate prompt templates.

The loop for writing a template: copy one from `p5rec prompts show ID` into your own folder,
edit it, check it with `p5rec prompts validate DIR`, and see it filled with a real example with
`p5rec prompts render ID --prompts DIR [--data DIR]`. Training and evaluation then take the
folder through the run config's `prompts:` list.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prompts",
        help="list, show, render and validate prompt templates",
        description="Inspect the prompt templates (the shipped defaults plus your --prompts folders, later "
        "folders overriding earlier ones by id), fill one with a real example, or check folders for errors.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def layers(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--prompts",
            action="append",
            default=[],
            metavar="DIR",
            help="a prompt folder (or YAML file) layered over the defaults; repeatable, later wins",
        )
        q.add_argument("--no-defaults", action="store_true", help="leave out the shipped templates")

    q = sub.add_parser("list", help="a table of templates: id, family, task, split, description")
    layers(q)
    q.add_argument("--task", help="only this task (e.g. sequential, direct_choice)")
    q.add_argument("--family", help="only this family (rating, sequential, direct, explanation, review)")
    q.add_argument("--split", choices=("seen", "unseen"), help="only seen or only unseen templates")
    q.set_defaults(func=list_command)

    q = sub.add_parser("show", help="one template's source, variables and answer")
    q.add_argument("id", help="template id, e.g. sequential-1")
    layers(q)
    q.set_defaults(func=show_command)

    q = sub.add_parser("render", help="fill a template with a real example from a dataset")
    q.add_argument("id", help="template id, e.g. sequential-1")
    layers(q)
    q.add_argument("--data", help="a dataset prepared by `p5rec data prepare` (default: small built-in synthetic data)")
    q.add_argument(
        "--split", default="test", choices=("train", "valid", "test"), help="which split to draw from (default test)"
    )
    q.add_argument("--count", type=int, default=1, help="how many examples (default 1)")
    q.add_argument("--seed", type=int, default=0, help="seed for the example choice and negatives (default 0)")
    q.set_defaults(func=render_command)

    q = sub.add_parser(
        "validate",
        help="report every problem in prompt folders (exit code 1 if any error)",
        description="Check YAML and Jinja syntax, variables, answers, item-ID spacing, duplicate ids and "
        "that every family has a seen template. Folders are layered over the defaults unless --no-defaults.",
    )
    q.add_argument("dirs", nargs="*", metavar="DIR", help="prompt folders or YAML files (default: only the defaults)")
    q.add_argument("--no-defaults", action="store_true", help="validate the folders alone, without the defaults")
    q.set_defaults(func=validate_command)


def _load(args: argparse.Namespace):
    from p5rec.templates.load import TemplateSet

    return TemplateSet.load(*args.prompts, include_defaults=not args.no_defaults)


def list_command(args: argparse.Namespace) -> int:
    from p5rec.templates.tasks import FAMILIES, TASKS

    if args.task is not None and args.task not in TASKS:
        raise ValueError(f"`--task` {args.task!r} is not a task; choose one of {sorted(TASKS)}")
    if args.family is not None and args.family not in FAMILIES:
        raise ValueError(f"`--family` {args.family!r} is not a family; choose one of {sorted(FAMILIES)}")
    rows = [
        (t.id, t.family, t.task, t.split, t.description + (f" [needs {', '.join(t.requires)}]" if t.requires else ""))
        for t in _load(args)
        if (args.task is None or t.task == args.task)
        and (args.family is None or t.family == args.family)
        and (args.split is None or t.split == args.split)
    ]
    header = ("ID", "FAMILY", "TASK", "SPLIT", "DESCRIPTION")
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(4)]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
    print(f"\n{len(rows)} template(s)")
    return 0


def show_command(args: argparse.Namespace) -> int:
    from p5rec.templates.tasks import TASKS

    t = _load(args)[args.id]
    spec = TASKS[t.task]
    print(f"id:          {t.id}")
    print(f"family:      {t.family}")
    print(f"task:        {t.task}")
    print(f"split:       {t.split}")
    print(f"description: {t.description}")
    print(f"source:      {t.source}")
    if t.requires:
        print(f"requires:    {', '.join(t.requires)} (skipped for data without them)")
    print(f"input:       {t.input}")
    print(f"target:      {t.target}")
    print(f"\nvariables of task {t.task!r} (* = used by this input; the target must be `{spec.answer}`):")
    for name, text in spec.variables.items():
        mark = "*" if name in t.input_variables else " "
        note = " [answer]" if name == spec.answer else " [not allowed in the input]" if name in spec.hidden else ""
        print(f"  {mark} {name:<15} {text}{note}")
    return 0


def render_command(args: argparse.Namespace) -> int:
    import numpy as np

    from p5rec.config import RunConfig
    from p5rec.data.synthetic import generate
    from p5rec.data.tables import RecData
    from p5rec.pipeline import prepare

    if args.count < 1:
        raise ValueError(f"`--count` ({args.count}) must be >= 1")
    templates = _load(args)
    tpl = templates[args.id]  # an unknown id fails here, before any data work
    if args.data:
        data = RecData.load_from_disk(args.data)
    else:
        data = generate(num_users=50, num_items=40, num_categories=4)
    # prepare() layers config.prompts over the defaults; with --no-defaults the set is swapped below.
    prepared = prepare(RunConfig(prompts=list(args.prompts)), data)
    builder = prepared.builder
    builder.templates = templates
    if not tpl.usable_with(builder.available):
        missing = sorted(set(tpl.requires) - builder.available)
        raise ValueError(f"template {tpl.id!r} needs {missing}, which dataset {data.name!r} does not have")
    rng = np.random.default_rng(args.seed)
    examples = builder.eval_examples(tpl.task, args.split, rng, template_ids=[tpl.id], max_contexts=args.count)
    if not examples:
        raise ValueError(
            f"dataset {data.name!r} has no {tpl.task} example in the {args.split!r} split "
            f"(the data lacks what this task needs, e.g. reviews or explanations)"
        )
    print(f"template {tpl.id} ({tpl.task}, {tpl.split}) on dataset {data.name!r}, split {args.split}")
    for e in examples[: args.count]:
        print(f"\nuser {e.user}, item {e.item}")
        print(f"input:  {e.input}")
        print(f"target: {e.target}")
    return 0


def validate_command(args: argparse.Namespace) -> int:
    from p5rec.templates.load import TemplateSet
    from p5rec.templates.validate import validate_paths

    problems = validate_paths(args.dirs, include_defaults=not args.no_defaults)
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        print(f"{p.severity} [{p.kind}] {p}")
    if errors:
        print(f"\n{len(errors)} error(s), {len(problems) - len(errors)} warning(s)")
        return 1
    n = len(TemplateSet.load(*args.dirs, include_defaults=not args.no_defaults))
    print(f"{'' if not problems else chr(10)}OK: {n} template(s), {len(problems)} warning(s)")
    return 0
