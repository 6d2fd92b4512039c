"""Every command the README and the documentation show still runs: each `vitbench-train` and
`vitbench-bench` command line composes its config with Hydra (nothing is trained), and every
`make <target>` named exists in the Makefile. A renamed key breaks this test, not the reader."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
CONFIGS = {"vitbench-train": "train", "vitbench-bench": "bench"}
# Shell variables the pages use, as a reader would fill them in.
VARIABLES = {"m": "vit"}


def code_of(text: str) -> list[str]:
    """The code a page shows: each fenced block's lines (backslash continuations joined) and each inline span."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    return lines + re.findall(r"`([^`\n]+)`", prose)


def command_lines() -> list[tuple[str, str]]:
    """(where, command) for every vitbench-train/-bench command, and `make train ARGS="..."`."""
    found = []
    for page in PAGES:
        for code in code_of(page.read_text()):
            code = re.sub(r"\s+#.*$", "", code).strip()
            train = re.match(r'make train ARGS="([^"]*)"', code)
            if train:
                code = "vitbench-train " + train.group(1)
            if code.split(" ")[0] in CONFIGS and "=" in code:
                found.append((str(page.relative_to(ROOT)), code))
    return found


def overrides_of(command: str) -> tuple[str, list[str]]:
    """The config name and the override lists to compose: a sweep's first value of every swept key,
    then each other value of each swept key in turn."""
    command = re.sub(r"\$\{?(\w+)\}?", lambda m: VARIABLES.get(m.group(1), "/tmp/vitbench-docs"), command)
    command = re.sub(r"<[^>]*>", "placeholder", command)  # <run folder>, <date>: a path there
    command = re.sub(r"(=|\s)~/", r"\1/tmp/home/", command)  # the shell expands ~ before Hydra reads it
    words = shlex.split(command)
    config = CONFIGS[words[0]]
    given = [w for w in words[1:] if w not in ("-m", "--multirun", "...") and "=" in w]
    parsed = OverridesParser.create().parse_overrides(given)
    first, variants = [], []
    for text, override in zip(given, parsed, strict=True):
        if override.is_sweep_override():
            values = list(override.sweep_string_iterator())
            first.append(f"{override.get_key_element()}={values[0]}")
            variants += [(len(first) - 1, f"{override.get_key_element()}={v}") for v in values[1:]]
        else:
            first.append(text)
    lists = [first] + [first[:i] + [value] + first[i + 1 :] for i, value in variants]
    return config, lists


COMMANDS = command_lines()


def test_the_pages_show_commands():
    assert len(COMMANDS) >= 40  # the guides and results pages hold about a hundred
    assert {where for where, _ in COMMANDS} >= {"README.md", "docs/getting-started.md", "docs/data.md"}


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[f"{w}:{c[:60]}" for w, c in COMMANDS])
def test_command_composes(where, command):
    config, lists = overrides_of(command)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        for overrides in lists:
            cfg = compose(config_name=config, overrides=overrides, return_hydra_config=True)
            assert "model" in cfg and "data" in cfg, f"{where}: {command}"


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))


def test_every_make_target_named_exists():
    targets = make_targets()
    named = {
        (str(page.relative_to(ROOT)), target)
        for page in PAGES
        for code in code_of(page.read_text())
        for target in re.findall(r"(?:^|[;&|(]\s*)make ([a-z][\w-]*)", code)
    }
    assert len(named) >= 20
    missing = sorted(f"{where}: make {target}" for where, target in named if target not in targets)
    assert missing == []
