"""Running vitbench-train as a user does, from the tests: a subprocess (run_cli, start/finish for one to
kill), the real entry point in this process (run_main in a test, run_in_process in a fixture of any
scope), and reading an offline W&B run back."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent  # stall_callback.py lives here: a subprocess's +callbacks.stall target
VITBENCH_TRAIN = Path(sys.executable).parent / "vitbench-train"


def run_cli(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    # WANDB_SERVICE: the test process's own W&B service (an in-process run's); a command starts its own.
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_API_KEY", "WANDB_SERVICE")}
    return subprocess.run(
        [str(VITBENCH_TRAIN), *overrides], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def call_main(overrides: tuple[str, ...], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """`vitbench-train OVERRIDES` through its real entry point, `vitbench.train:main` (the moved-key check,
    then Hydra's argument parsing, run and error report), in this process: a new process per run would
    spend ~10 s importing. The torch thread count a run's `threads=` sets is put back after it.
    Returns the exit code."""
    import torch
    from hydra.core.global_hydra import GlobalHydra

    from vitbench.train import main

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["vitbench-train", *overrides])
    GlobalHydra.instance().clear()
    threads = torch.get_num_threads()
    try:
        main()
        return 0
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    finally:
        GlobalHydra.instance().clear()
        torch.set_num_threads(threads)


def run_main(*overrides: str, cwd: Path, monkeypatch, capsys) -> tuple[int, str]:
    """`vitbench-train OVERRIDES` in this process (call_main), in a test.
    Returns the exit code and what it printed to stderr."""
    code = call_main(overrides, cwd, monkeypatch)
    return code, capsys.readouterr().err


def run_in_process(*overrides: str, cwd: Path) -> tuple[int, str]:
    """`vitbench-train OVERRIDES` in this process (call_main), in a fixture of any scope (no capsys there).
    Returns the exit code and what it printed to stderr."""
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as monkeypatch, contextlib.redirect_stderr(err):
        code = call_main(overrides, cwd, monkeypatch)
    return code, err.getvalue()


def assert_stops_cleanly(*overrides: str, message: str, tmp_path: Path, monkeypatch, capsys) -> None:
    """`vitbench-train OVERRIDES` on bad input: a non-zero exit, `message` without a traceback, and
    an earlier results.json in the run folder left as it was, no checkpoint written."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    earlier = run_dir / "results.json"
    earlier.write_text('{"from": "an earlier run"}')

    code, stderr = run_main(
        *overrides, f"hydra.run.dir={run_dir}", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys
    )

    assert code != 0
    assert message in stderr, stderr[-2000:]
    assert "Traceback" not in stderr  # the full one only with HYDRA_FULL_ERROR=1
    assert earlier.read_text() == '{"from": "an earlier run"}'
    assert not (run_dir / "checkpoints").exists()


def wandb_inspect(run_dir: Path, *flags: str) -> str:
    """What wandb wrote for an offline run (offline, wandb 0.31 writes no summary or config file)."""
    wandb = Path(sys.executable).parent / "wandb"
    return subprocess.run(
        [str(wandb), "leet", "inspect", *flags, "--json", str(run_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def wandb_run_header(run_dir: Path) -> dict:
    """The run record: display name, job type, group, tags."""
    records = (json.loads(line) for line in wandb_inspect(run_dir).splitlines() if line.strip())
    return next(r["run"] for r in records if r.get("type") == "run")


def start(*overrides: str, cwd: Path) -> subprocess.Popen:
    # WANDB_SERVICE: an in-process test's W&B service; a run of its own starts its own, as a user's does
    # (a shared one would still hold the killed run's id when the resume asks for it).
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_API_KEY", "WANDB_SERVICE")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    env["WANDB__TRANSACTION_LOG_FLUSH_INTERVAL"] = "1"  # W&B writes its log every second, not every 15
    return subprocess.Popen(
        [str(VITBENCH_TRAIN), *overrides], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return out + err
