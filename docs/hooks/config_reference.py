"""MkDocs hook: the configuration reference's tables, read from the code at build time.

Environment variables come from `waketrain.settings.Settings`, training keys from
`waketrain.training.config.TrainConfig`: names, defaults, allowed values and descriptions
are the ones the service validates against, so the page cannot drift from them.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from mkdocs.exceptions import PluginError
from pydantic import BaseModel
from pydantic.fields import FieldInfo

PAGE = "reference/configuration.md"
SETTINGS_MARKER = "<!-- generated: settings -->"
TRAIN_MARKER = "<!-- generated: train-config -->"


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    for marker in (SETTINGS_MARKER, TRAIN_MARKER):
        if marker not in markdown:
            raise PluginError(f"{PAGE} lost its marker {marker!r}.")
    from waketrain.settings import Settings
    from waketrain.training.config import TrainConfig

    markdown = markdown.replace(SETTINGS_MARKER, settings_table(Settings))
    return markdown.replace(TRAIN_MARKER, train_config_tables(TrainConfig))


def settings_table(settings: Any) -> str:
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in settings.model_fields.items():
        variable = settings.variable(name)
        lines.append(f"| `{variable}` | {default_of(field)} | {cell(field.description)} |")
    return "\n".join(lines)


def train_config_tables(config: type[BaseModel]) -> str:
    """The top-level keys, then one table per group (`augment.*`, `synth.*`, ...)."""
    plain, groups = [], []
    for name, field in config.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            groups.append((name, field.annotation))
        else:
            plain.append((name, field))
    parts = [key_table(plain, prefix="")]
    for group, model in groups:
        about = f"{cell(model.__doc__)}\n\n" if model.__doc__ else ""
        parts.append(f"### {group}.*\n\n{about}{key_table(model.model_fields.items(), group)}")
    return "\n\n".join(parts)


def key_table(fields: typing.Iterable[tuple[str, FieldInfo]], prefix: str) -> str:
    lines = ["| key | default | allowed | meaning |", "| --- | --- | --- | --- |"]
    for name, field in fields:
        key = f"{prefix}.{name}" if prefix else name
        allowed = allowed_values(field)
        lines.append(f"| `{key}` | {default_of(field)} | {allowed} | {cell(field.description)} |")
    return "\n".join(lines)


def allowed_values(field: FieldInfo) -> str:
    """Literal choices, a pattern's alternatives, or the numeric bounds."""
    choices = [a for a in typing.get_args(field.annotation) if a is not type(None)]
    if typing.get_origin(field.annotation) is typing.Literal:
        return ", ".join(f"`{c}`" for c in choices)
    bounds = []
    for rule in field.metadata:
        if pattern := getattr(rule, "pattern", None):
            return ", ".join(f"`{c}`" for c in pattern.strip("^$()").split("|"))
        for kind, attribute, symbol in ((Ge, "ge", "≥"), (Gt, "gt", ">"), (Le, "le", "≤"),
                                        (Lt, "lt", "<")):  # fmt: skip
            if isinstance(rule, kind):
                bounds.append(f"{symbol} {number(getattr(rule, attribute))}")
    allowed = ", ".join(bounds)
    if type(None) in typing.get_args(field.annotation):
        allowed += " or `null`"
    return allowed


def default_of(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if value is None or value == ():
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        return f"`{value}`"
    if isinstance(value, float | int):
        return f"`{number(value)}`"
    return f"`{value}`"


def number(value: float) -> str:
    """As an environment variable or `--set` would spell it: 14, not 14.0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def cell(text: str | None) -> str:
    """Text that stays inside one Markdown table cell."""
    return " ".join((text or "").split()).replace("|", "\\|")
