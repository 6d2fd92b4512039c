"""mkdocs hook: the reference pages written from the code at build time, so that they cannot drift.

- ``reference/commands.md``: every ``vitbench-*`` command's ``--help`` (its argparse parser), and the
  Hydra commands' root configs (their flags are config keys);
- ``reference/record-keys.md``: the results.json keys of each task, from the task definitions
  (:mod:`vitbench.compare.tasks`);
- ``reference/config-groups.md``: every config group under ``conf/`` and each option's header comment.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import io
import os
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
HYDRA_COMMANDS = {"vitbench-train": "train.yaml", "vitbench-bench": "bench.yaml"}


def on_files(files, config):
    pages = {
        "reference/commands.md": commands_page(),
        "reference/record-keys.md": record_keys_page(),
        "reference/config-groups.md": config_groups_page(),
    }
    for uri, text in pages.items():
        files.append(File.generated(config, uri, content=text))
    return files


def scripts() -> dict[str, str]:
    """The console scripts vitbench installs (pyproject.toml's [project.scripts]): name -> "module:function"."""
    points = importlib.metadata.distribution("vitbench").entry_points
    return {p.name: p.value for p in sorted(points, key=lambda p: p.name) if p.group == "console_scripts"}


def help_text(target: str) -> str:
    """What `<command> --help` prints, for an argparse command whose main takes argv."""
    module, _, function = target.partition(":")
    main = getattr(importlib.import_module(module), function)
    out = io.StringIO()
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: a fixed width keeps the page stable
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main(["--help"])
    return out.getvalue().rstrip()


def header_comment(path: Path) -> str:
    """The comment lines a YAML file opens with (its description), without `# ` and @package lines."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        text = line[1:].strip()
        if not text.startswith("@package"):
            lines.append(text)
    return " ".join(lines).strip()


def commands_page() -> str:
    parts = [
        "# Commands",
        "",
        "Every command vitbench installs, with its flags as `--help` prints them (written from the "
        "commands' own parsers when this site is built). `vitbench-train` and `vitbench-bench` are Hydra "
        "applications: their flags are config keys (`key=value`, `+key=value` to add one, `-m` for a "
        "sweep, `--cfg job` to print the composed config without running); their root configs follow, "
        "and the groups are in [Config groups](config-groups.md).",
    ]
    for name, target in scripts().items():
        parts += ["", f"## `{name}`", ""]
        if name in HYDRA_COMMANDS:
            root = CONF / HYDRA_COMMANDS[name]
            parts += [
                f"{header_comment(root)}",
                "",
                f"Its root config, `conf/{root.name}`:",
                "",
                "```yaml",
                root.read_text().rstrip(),
                "```",
            ]
        else:
            parts += ["```text", help_text(target), "```"]
    parts += [
        "",
        "## `python -m vitbench.bench.photos` and `python -m vitbench.bench.rss`",
        "",
        "Two helpers of the [data pipeline's measurements](../results/data-pipeline/index.md):",
        "",
        "```text",
        help_text("vitbench.bench.photos:main"),
        "```",
        "",
        "```text",
        help_text("vitbench.bench.rss:main"),
        "```",
    ]
    return "\n".join(parts) + "\n"


def _pattern(key: str) -> str:
    return re.sub(r"\d+", "{n}", key)


def key_rows(metrics) -> list[str]:
    """A table row per key, keys that differ only in numbers folded into one row (`ece_{15,100}`)."""
    groups: dict[str, list] = {}
    for metric in metrics:
        groups.setdefault(_pattern(metric.key), []).append(metric)
    rows = []
    for pattern, group in groups.items():
        first = group[0]
        if len(group) == 1:
            key = first.key
        else:
            numbers = [re.findall(r"\d+", m.key) for m in group]
            shown = ", ".join("/".join(n) for n in numbers)
            key = f"{pattern}, {{n}} in {shown}"
        logged = f"`{first.logged}`" if first.logged else "–"
        header = first.header or "– (results.csv)"
        rows.append(f"| `{key}` | {logged} | {header} | {'yes' if first.optional else 'no'} |")
    return rows


def record_keys_page() -> str:
    from vitbench.compare.tasks import all_tasks
    from vitbench.run.results import COMMON_KEYS, RUN_KEYS

    parts = [
        "# results.json keys",
        "",
        "Every run writes `results.json` in its folder: the keys common to every task, then the figures "
        "its task defines, then the keys the run adds. This page is written from the task definitions "
        "(`vitbench.compare.tasks`, each task's `task.py`) when the site is built: a key added there "
        "appears here. Accuracies and other fractions are stored in [0, 1]; the table column shows them "
        "in the report's unit. Keys that differ only in a number are folded into one row.",
        "",
        "## Common to every task",
        "",
        ", ".join(f"`{k}`" for k in COMMON_KEYS)
        + "; after the task's figures: "
        + ", ".join(f"`{k}`" for k in RUN_KEYS)
        + ".",
    ]
    for task in all_tasks().values():
        parts += [
            "",
            f"## {task.title} (`task: {task.name}`)",
            "",
            f"Headline `{task.headline}`; best checkpoint by `{task.monitor}` ({task.monitor_mode}); "
            f"a sweep optimizes `{task.best_metric}`.",
            "",
            "| key | read from the logged metric | table column | optional |",
            "| --- | --- | --- | --- |",
            *key_rows(task.metrics),
        ]
    return "\n".join(parts) + "\n"


def config_groups_page() -> str:
    defaults = {}
    for line in (CONF / "train.yaml").read_text().splitlines():
        found = re.match(r"\s+- (?:optional )?([\w/@]+): ([^\s#]+)", line)
        if found:
            defaults[found.group(1)] = found.group(2)
    parts = [
        "# Config groups",
        "",
        "Every group under `conf/` and its options, each with the comment its file opens with "
        "(written from `conf/` when the site is built). Choose an option with `group=option` "
        "(`model=swin`), a nested one with its path (`model/net=timm`), and override any key "
        "(`data.batch_size=128`). Defaults are those of `conf/train.yaml`.",
    ]
    for group in sorted(p for p in CONF.rglob("*") if p.is_dir()):
        options = sorted(group.glob("*.yaml"))
        if not options:
            continue
        name = group.relative_to(CONF).as_posix()
        default = defaults.get(name)
        parts += [
            "",
            f"## `{name}`" + (f" (default `{default}`)" if default and default != "null" else ""),
            "",
        ]
        parts += ["| option | what |", "| --- | --- |"]
        for option in options:
            text = header_comment(option).replace("|", "\\|") or "–"
            parts.append(f"| `{option.stem}` | {text} |")
    return "\n".join(parts) + "\n"
