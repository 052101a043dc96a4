"""MkDocs hook: the model card's JSON Schema, generated from `ModelCard` at build time."""

from __future__ import annotations

import json
from typing import Any

from mkdocs.exceptions import PluginError

PAGE = "reference/model-card.md"
MARKER = "<!-- generated: model-card-schema -->"


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"{PAGE} lost its marker {MARKER!r}.")
    from waketrain.runtime.model_card import card_schema

    schema = json.dumps(card_schema(), indent=2)
    return markdown.replace(MARKER, f"```json\n{schema}\n```")
