"""Running vitbench-train as a user does, from the tests: a subprocess (run_cli, start/finish for one to
kill), the real entry point in this process (run_main), and reading an offline W&B run back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent  # stall_callback.py lives here: a subprocess's +callbacks.stall target
VITBENCH_TRAIN = Path(sys.executable).parent / "vitbench-train"


def run_cli(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "WANDB_API_KEY"}
    return subprocess.run(
        [str(VITBENCH_TRAIN), *overrides], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def run_main(*overrides: str, cwd: Path, monkeypatch, capsys) -> tuple[int, str]:
    """`vitbench-train OVERRIDES` through its real entry point (Hydra's argument parsing and error
    report included), in this process: a new process per case would spend ~10 s importing.
    Returns the exit code and what it printed to stderr."""
    from hydra.core.global_hydra import GlobalHydra

    from vitbench.train import main

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["vitbench-train", *overrides])
    GlobalHydra.instance().clear()
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    return code, capsys.readouterr().err


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
