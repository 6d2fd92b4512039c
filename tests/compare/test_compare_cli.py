"""vitbench-compare: the console script over folders and over a (fake) W&B API."""

from __future__ import annotations

import pytest
import wandb
from fake_runs import FakeApi, FakeRun, fake_denoising_record

from vitbench.compare import find_wandb_runs, main


def test_cli_writes_into_the_sweep_folder_and_prints_the_table(sweep, capsys):
    root, _ = sweep
    assert main([str(root)]) == 0  # failed jobs do not fail the report
    out = capsys.readouterr().out
    assert "| model | model.net.drop_path_rate | test acc (%) |" in out
    assert "| deit | 0.0 | 75.65 ± 0.92 |" in out
    assert "2 failed or unfinished run(s)" in out
    assert f"wrote {root / 'report.html'}" in out
    assert (root / "results.md").is_file()


def test_cli_out_folder(sweep, tmp_path, capsys):
    root, _ = sweep
    job = next(root.glob("0_*"))
    assert main([str(job), "--out", str(tmp_path / "cmp")]) == 0
    assert (tmp_path / "cmp" / "report.html").is_file()
    assert "| vit | 70.00 | 71.00 | 1 |" in capsys.readouterr().out  # n=1: no std


def test_cli_default_out_for_run_folders(sweep, tmp_path, monkeypatch):
    root, _ = sweep
    monkeypatch.chdir(tmp_path)
    assert main([str(next(root.glob("0_*")))]) == 0
    assert (tmp_path / "comparison" / "results.csv").is_file()


def test_cli_without_runs_fails_with_a_message(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 1
    assert "no run found in" in capsys.readouterr().err
    assert main([str(tmp_path / "missing")]) == 2
    assert "missing does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code != 0


def test_wandb_reads_the_group_and_lists_crashed_runs():
    api = FakeApi()
    runs = find_wandb_runs("team/vitbench", "sweep-1", api=api)
    assert api.calls == [("team/vitbench", {"group": "sweep-1"})]
    crashed = [r for r in runs if not r.finished]
    assert [(r.source, r.reason) for r in crashed] == [("team/vitbench/r99", "W&B state is 'crashed'")]
    assert crashed[0].overrides == ["model=vit", "seed=2", "model.net.drop_path_rate=0.1"]
    with pytest.raises(ValueError, match="ENTITY/PROJECT"):
        find_wandb_runs("vitbench", "sweep-1", api=api)


def test_wandb_gives_the_same_table_as_the_folders(sweep, tmp_path, monkeypatch, capsys):
    root, _ = sweep
    monkeypatch.setattr(wandb, "Api", FakeApi)
    assert main([str(root)]) == 0
    from_folders = capsys.readouterr().out.split("\n\n")[:2]  # the heading and the table
    assert main(["--wandb", "team/vitbench", "--group", "sweep-1", "--out", str(tmp_path / "wb")]) == 0
    from_wandb = capsys.readouterr().out.split("\n\n")[:2]
    assert from_wandb == from_folders
    assert (root / "results.csv").read_text() == (tmp_path / "wb" / "results.csv").read_text()
    assert "team/vitbench/r99" in (tmp_path / "wb" / "results.md").read_text()


def test_wandb_without_group_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--wandb", "team/vitbench"])
    assert "--wandb needs --group" in capsys.readouterr().err


def test_cli_prints_one_table_per_task(mixed, capsys):
    root, _, _ = mixed
    assert main([str(root)]) == 0
    out = capsys.readouterr().out
    assert "## Classification\n\n| model | model.net.drop_path_rate | test acc (%) |" in out
    denoising = "## Denoising (FID in vitbench-CNN features; not comparable with Inception FID)"
    assert f"{denoising}\n\n| model | model.prediction | FID (vitbench-CNN) |" in out
    assert "| vit | 0.1 | 72.65 ± 0.92 |" in out and "| jit | eps | 23.75 ± 1.06 |" in out
    assert "Sampling: 1000 generated images, 20 Heun steps, CFG scale 2 in every run." in out
    assert "3 failed or unfinished run(s)" in out
    assert "_unfinished [model=jit model.prediction=x seed=2]: unfinished: fid is null" in out
    assert f"wrote {root / 'results_denoising.csv'}" in out


def test_wandb_reads_denoising_summaries():
    class Api:
        def runs(self, path: str, filters: dict) -> list[FakeRun]:
            record = fake_denoising_record("jit", "x", 0)
            return [FakeRun("d0", "finished", record, {"model_name": "jit", "seed": 0})]

    (run,) = find_wandb_runs("team/vitbench", "g", api=Api())
    assert run.finished and (run.results["task"], run.results["fid"]) == ("denoising", 20.0)
    assert run.overrides == ["model=jit", "seed=0"]
    assert [v for _, v in run.val_curve] == pytest.approx([0.25, 0.15, 0.05])  # val/loss, not val/acc
