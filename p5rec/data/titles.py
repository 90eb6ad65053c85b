"""Item titles as a person should read them: markup stripped, entities decoded, never empty junk.

Some metadata dumps carry page fragments as titles (Amazon 2018, several categories:
``<span class="a-size-medium a-color-secondary"``), others entities (``Strings &amp; Picks``).
Titles reach prompts, the API's sentences and the demo, so they are cleaned once, at preparation.
"""

from __future__ import annotations

import html
import re

# A complete tag, or an unclosed one running to the end (the dumps cut fragments mid-tag).
_TAG = re.compile(r"<[A-Za-z/!?][^<>]*(?:>|$)")


def clean_title(title: str) -> str:
    """`title` without HTML tags or entities, whitespace collapsed ("" when nothing readable is left).

    >>> clean_title('<span class="a-size-medium a-color-secondary"')
    ''
    >>> clean_title("<b>Fender</b> Strings &amp; Picks &lt;3")
    'Fender Strings & Picks <3'
    """
    text = _TAG.sub(" ", title)
    if "&" in text:
        text = _TAG.sub(" ", html.unescape(text))  # entities may encode tags: "&lt;b&gt;"
    return " ".join(text.split())


def choose_title(title: str, fallback: str, item_id: str) -> tuple[str, str]:
    """The title to store and what happened: "kept", "cleaned", "fallback" (another field) or "item_id".

    A title that cleans to nothing is replaced by the cleaned `fallback` field (e.g. the brand), else by
    the item ID, so no item is shown as markup or as a blank where the source did name it. An empty
    `title` stays empty ("kept"): the source has none, and templates needing titles skip such data.
    """
    raw = " ".join(title.split())
    if not raw:
        return "", "kept"
    cleaned = clean_title(raw)
    if cleaned:
        return cleaned, "kept" if cleaned == raw else "cleaned"
    fallback = clean_title(fallback)
    return (fallback, "fallback") if fallback else (item_id, "item_id")
