"""`prepare_dataset`: a registered source's raw files -> a dataset folder, written atomically.

The loaders (`p5rec.data.loaders`) parse each source and share one builder
(:func:`p5rec.data.build.build_recdata`: dedupe, k-core, ordering, explanation targets); this
module picks the loader, checks the output folder first and publishes the result.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from p5rec.data.loaders import get_source
from p5rec.data.tables import RecData, check_output_dir, remove_stale_scratch, scratch_dir


def prepare_dataset(
    source: str,
    out: str | os.PathLike,
    *,
    k_core: int | None = None,
    strict: bool = False,
    max_rows: int | None = None,
    explanations: bool | None = None,
    name: str | None = None,
    overwrite: bool = False,
    **files: Any,
) -> RecData:
    """Load a source's files, preprocess them and save the tables atomically to `out`.

    The Python twin of ``p5rec data prepare``. Scratch files go to a hidden folder beside `out`
    (same disk, so nothing large lands in /tmp) and are removed afterwards; those of an earlier
    run that was killed are removed when the next one starts.

    Args:
        source: a registered source name (see :data:`p5rec.data.loaders.SOURCES`).
        out: the dataset folder to write: new, empty, or an existing dataset (replaced only on success).
        k_core: the k-core threshold; None: the source's default.
        strict: fail on the first malformed line instead of counting it.
        max_rows: read at most this many interaction rows.
        explanations: extract explanation targets; None: the source's default.
        name: the dataset name; None: the source name.
        overwrite: write into `out` even when it is a non-empty folder that is not a dataset
            (checked before anything is read; its other files are kept either way).
        **files: the source's file arguments (``reviews=``, ``meta=``, ``ratings=``, ...).

    >>> prepare_dataset("amazon2014", "data/music", reviews="reviews_Musical_5.json.gz")  # doctest: +SKIP
    """
    spec = get_source(source)
    files = {k: v for k, v in files.items() if v is not None}
    missing = [f for f in spec.required if f not in files]
    if missing:
        raise ValueError(f"source {source!r} needs `{missing[0]}` (flag --{missing[0].replace('_', '-')})")
    unknown = sorted(set(files) - set(spec.required) - set(spec.optional))
    if unknown:
        raise ValueError(f"source {source!r} does not take {unknown}; it takes {list(spec.required + spec.optional)}")
    options: dict[str, Any] = {"strict": strict, "k_core": spec.default_k_core if k_core is None else k_core}
    options.update(
        {k: v for k, v in (("max_rows", max_rows), ("explanations", explanations), ("name", name)) if v is not None}
    )
    out = Path(out)
    check_output_dir(out, overwrite)  # before reading anything: a refused folder costs no time
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_scratch(out)
    work = scratch_dir(out, "prepare")
    try:
        data = spec.loader(**files, work_dir=work, **options)
        data.save_to_disk(out, overwrite=overwrite)
        del data
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return RecData.load_from_disk(out)


def format_stats(stats: dict[str, Any], info: dict[str, Any] | None = None) -> str:
    """A two-column text table of :meth:`RecData.stats` plus the preprocessing counts in `info`."""
    rows: list[tuple[str, str]] = []
    for key, value in stats.items():
        if key == "coverage":
            rows += [(f"coverage: {task}", f"{share:.1%}") for task, share in value.items()]
        elif isinstance(value, float):
            rows.append((key, f"{value:.6f}" if key == "density" else f"{value:.2f}"))
        else:
            rows.append((key, f"{value:,}"))
    info = info or {}
    for key in ("rows_read", "duplicates_dropped", "k_core", "removed_by_k_core", "items_without_metadata"):
        if key in info:
            rows.append((key.replace("_", " "), f"{info[key]:,}"))
    if "item_titles" in info:
        t = info["item_titles"]
        rows.append(("item titles cleaned", f"{t['cleaned']:,}"))
        rows.append(("item titles replaced", f"{t['fallback']:,} by another field, {t['item_id']:,} by the ID"))
    if "summaries" in info:
        s = info["summaries"]
        rows.append(("summaries kept / titles", f"{s['kept']:,} / {s['titles']:,}"))
    if "explanations" in info and info["explanations"].get("enabled"):
        e = info["explanations"]
        rows.append(("explanations (features)", f"{e['extracted']:,} ({e['vocabulary_size']:,} features)"))
    if "malformed" in info:
        rows.append(("malformed lines", f"{info['malformed']['count']:,}"))
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    for sample in (info.get("malformed") or {}).get("samples", []):
        lines.append(f"  malformed: {sample}")
    return "\n".join(lines)
