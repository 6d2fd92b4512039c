"""One W&B folder per sweep, so that `wandb leet <sweep>/wandb` shows every job's run together.

wandb 0.31's terminal dashboard lists only the run folders (``run-*``, ``offline-run-*``) directly
inside the one ``wandb/`` folder it is given, and reads which of them to overlay from
``.wandb-leet.json`` there (``{"selected_runs": [folder names]}``). Each job of a sweep keeps its
run in its own folder; this links it into ``<sweep>/wandb/`` and selects it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from vitbench.run.files import write_json_atomic

LEET_STATE = ".wandb-leet.json"
RUN_PREFIXES = ("run-", "offline-run-")


def link_wandb_runs(sweep_wandb: Path, run_dir: Path) -> list[str]:
    """Link the W&B runs of ``run_dir/wandb`` into ``sweep_wandb`` (relative links, so the sweep
    folder can move) and select every run linked there for ``wandb leet``; returns the selection."""
    sweep_wandb.mkdir(parents=True, exist_ok=True)
    for run in sorted((run_dir / "wandb").glob("*run-*")):
        link = sweep_wandb / run.name
        if run.name.startswith(RUN_PREFIXES) and run.is_dir() and not link.exists():
            link.symlink_to(os.path.relpath(run.resolve(), sweep_wandb.resolve()))
    names = sorted(p.name for p in sweep_wandb.iterdir() if p.name.startswith(RUN_PREFIXES) and p.is_dir())
    state_path = sweep_wandb / LEET_STATE
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        state = {}
    state = state if isinstance(state, dict) else {}
    state["selected_runs"] = names
    # Parallel jobs (joblib) may write at once: each writes the whole listing, atomically (and not
    # private to this user: leet may run as another user of the machine).
    write_json_atomic(state_path, state)
    return names
