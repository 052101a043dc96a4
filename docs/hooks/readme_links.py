"""MkDocs hook: the README's relative links must reach files, as the site's own links must.

MkDocs checks links between pages of docs/ (with --strict a broken one fails the build);
the README lives outside docs/, so its links into docs/ are checked here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

# [text](target) and [text](target "title"); the target up to a space, `#` or `)`.
LINK = re.compile(r"\]\(\s*<?([^)\s#>]+)")
EXTERNAL = ("http://", "https://", "mailto:")


def on_pre_build(config: Any, **_: Any) -> None:
    root = Path(config.config_file_path).parent
    readme = root / "README.md"
    broken = [
        target
        for target in LINK.findall(readme.read_text())
        if not target.startswith(EXTERNAL) and not (root / target).exists()
    ]
    if broken:
        raise PluginError(f"README.md links to files that do not exist: {', '.join(broken)}")
