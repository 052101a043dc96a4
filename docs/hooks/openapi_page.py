"""MkDocs hook: the HTTP API page, rendered from the app's own OpenAPI schema at build time.

The app is built with the project's factory (`waketrain.api.app.create_app`) over a
temporary data dir and only asked for its schema: the lifespan (database, analysis child,
bank imports) never starts, so the build leaves no file, process or thread behind.
"""

from __future__ import annotations

import tempfile
import warnings
from functools import cache
from pathlib import Path
from typing import Any

from markdown.extensions.toc import slugify
from mkdocs.exceptions import PluginError

PAGE = "reference/api.md"
MARKER = "<!-- generated: openapi -->"
Schema = dict[str, Any]


@cache
def openapi_schema() -> Schema:
    """The schema `create_app` serves at /openapi.json."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # asyncssh's import-time DSA deprecation notices
        from waketrain.api.app import create_app
        from waketrain.settings import Settings

    with tempfile.TemporaryDirectory(prefix="waketrain-docs-") as data_dir:
        app = create_app(Settings(data_dir=Path(data_dir)))
        schema: dict[str, Any] = app.openapi()
        return schema


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"{PAGE} lost its marker {MARKER!r}: nowhere to put the endpoints.")
    try:
        schema = openapi_schema()
    except Exception as exc:  # an import or factory error in src/, said in one line
        raise PluginError(f"{PAGE}: cannot build the app's OpenAPI schema: {exc!r}") from exc
    return markdown.replace(MARKER, render(schema))


def render(schema: Schema) -> str:
    """Endpoints grouped by tag, then every schema they name."""
    groups: dict[str, list[str]] = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            tag = (operation.get("tags") or ["other"])[0]
            groups.setdefault(tag, []).append(render_operation(method, path, operation))
    version, paths = schema["info"]["version"], len(schema["paths"])
    lines = [f"The endpoints of waketrain {version} ({paths} paths), by tag:", ""]
    for tag, blocks in groups.items():
        lines += [f"## {tag}", "", *blocks]
    lines += ["## Schemas", ""]
    for name, component in schema.get("components", {}).get("schemas", {}).items():
        lines += render_component(name, component)
    return "\n".join(lines)


def render_operation(method: str, path: str, operation: Schema) -> str:
    lines = [f"### {method.upper()} {path}", "", f"**{operation.get('summary', '')}**."]
    if description := operation.get("description"):
        lines[-1] += " " + one_line(description)
    lines.append("")
    if parameters := operation.get("parameters"):
        lines += ["| parameter | in | type | required | description |", "| --- " * 5 + "|"]
        for p in parameters:
            required = "yes" if p.get("required") else "no"
            about = cell(p.get("description") or p.get("schema", {}).get("description", ""))
            kind = type_of(p.get("schema", {}))
            lines.append(f"| `{p['name']}` | {p['in']} | {kind} | {required} | {about} |")
        lines.append("")
    if body := operation.get("requestBody"):
        bodies = [f"`{mime}` {type_of(c.get('schema', {}))}" for mime, c in body["content"].items()]
        lines += ["Request body: " + ", ".join(bodies), ""]
    answers = []
    for status, response in operation.get("responses", {}).items():
        content = response.get("content") or {}
        kinds = [type_of(c.get("schema", {})) for c in content.values() if c.get("schema")]
        answer = ", ".join(k for k in kinds if k) or response["description"]
        answers.append(f"`{status}` {answer}")
    lines += ["Responses: " + "; ".join(answers), ""]
    return "\n".join(lines)


def render_component(name: str, component: Schema) -> list[str]:
    lines = [f"### {name}", ""]
    if description := component.get("description"):
        lines += [one_line(description), ""]
    if enum := component.get("enum"):
        return [*lines, "One of " + ", ".join(f"`{v}`" for v in enum) + ".", ""]
    properties = component.get("properties", {})
    if not properties:
        return [*lines, type_of(component), ""]
    required = set(component.get("required", []))
    lines += ["| field | type | required | description |", "| --- | --- | --- | --- |"]
    for field, spec in properties.items():
        needed = "yes" if field in required else "no"
        about = cell(spec.get("description", ""))
        lines.append(f"| `{field}` | {type_of(spec)} | {needed} | {about} |")
    return [*lines, ""]


def type_of(spec: Schema) -> str:
    """A schema in a few words: a link for a named schema, `T or null` for optional ones."""
    if ref := spec.get("$ref"):
        name = ref.rsplit("/", 1)[-1]
        return f"[{name}](#{slugify(name, '-')})"
    for combinator in ("anyOf", "oneOf", "allOf"):
        if options := spec.get(combinator):
            return " or ".join(type_of(option) for option in options)
    if "enum" in spec:
        return " or ".join(f"`{v}`" for v in spec["enum"])
    kind = spec.get("type", "any")
    if kind == "array":
        return f"array of {type_of(spec.get('items', {}))}"
    if kind == "object" and isinstance(spec.get("additionalProperties"), dict):
        return f"object of {type_of(spec['additionalProperties'])}"
    if spec.get("format") in ("binary", "date-time", "uuid"):
        return f"{kind} ({spec['format']})"
    return str(kind)


def one_line(text: str) -> str:
    return " ".join(text.split())


def cell(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return one_line(text).replace("|", "\\|")
