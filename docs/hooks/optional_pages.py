"""mkdocs hook: a results page that only a study's command writes is in the navigation once it exists.

The claims study's page (``results/claims-study.md``) is written by its own command; until it has run,
the navigation leaves it out rather than show an empty page.
"""

from __future__ import annotations

from pathlib import Path

OPTIONAL = ("results/claims-study.md",)


def _prune(items: list, docs: Path) -> list:
    kept = []
    for item in items:
        if isinstance(item, dict):
            ((title, value),) = item.items()
            if isinstance(value, list):
                kept.append({title: _prune(value, docs)})
                continue
            if value in OPTIONAL and not (docs / value).is_file():
                continue
        kept.append(item)
    return kept


def on_config(config):
    config["nav"] = _prune(config["nav"], Path(config["docs_dir"]))
    return config
