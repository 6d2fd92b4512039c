"""vitbench-evaluate on a finished run: the figures land in results.json with the record's format kept,
the picture in pictures/, a second call skips the run, the same seed gives the same figures; a
sweep profiles its finished classifier runs only; bad input stops with one line naming it."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from clirun import wandb_inspect
from vitbench.evaluation import evaluate
from vitbench.evaluation.evaluate import main
from vitbench.evaluation.parts import PARTS
from vitbench.evaluation.record import wandb_settings
from vitbench.pretraining import MAEModule
from vitbench.run.machine import cpu_name
from vitbench.run.results import RECORD_FORMAT

KEYS = ["ece_15", "ece_15_scaled", "ece_100", "ece_100_scaled", "nll", "nll_scaled", "brier", "brier_scaled",
        "temperature"]  # fmt: skip


def record(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def test_a_run_is_profiled_into_its_record_and_pictures_then_skipped(run, capsys):
    before = record(run)

    assert main([str(run)]) == 0

    after = record(run)
    assert list(after)[0] == "format" and after["format"] == RECORD_FORMAT
    assert {k: after[k] for k in before} == before  # what training wrote stays as it was
    assert list(after)[len(before) :] == [*KEYS, "evaluation"]
    assert 0 <= after["ece_15"] <= 1 and after["temperature"] > 0 and after["nll"] > 0
    details = after["evaluation"]["calibration"]
    assert details["keys"] == KEYS and details["seed"] == 0
    assert details["pictures"] == ["pictures/reliability.png"]
    assert details["checkpoint"].startswith("checkpoints/best-")
    assert details["device"] == f"cpu ({cpu_name()})" and details["threads"] == torch.get_num_threads()
    assert (run / "pictures" / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "W&B: the run has none" in capsys.readouterr().out

    assert main([str(run)]) == 0
    assert "already holds calibration: nothing to do" in capsys.readouterr().out
    assert record(run) == after


def test_the_same_seed_gives_the_same_figures(run, capsys):
    assert main([str(run)]) == 0
    first = {k: record(run)[k] for k in KEYS}
    assert main([str(run), "--redo"]) == 0
    assert {k: record(run)[k] for k in KEYS} == first


def test_a_sweep_profiles_its_finished_classifier_runs(run, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    shutil.copytree(run, sweep / "0_model=vit")
    unfinished = Path(shutil.copytree(run, sweep / "1_model=vit"))
    (unfinished / "results.json").write_text(json.dumps({**record(run), "test_acc": None}))
    mae = Path(shutil.copytree(run, sweep / "2_model=mae"))
    (mae / "results.json").write_text(json.dumps({**record(run), "task": "pretraining"}))

    assert main([str(sweep)]) == 0

    out = capsys.readouterr().out
    assert "ece_15" in record(sweep / "0_model=vit")
    assert f"{unfinished}: skipped, unfinished (stopped before the test)" in out
    assert f"{mae}: skipped, a pretraining run, not a classifier: no part applies" in out
    assert main([str(sweep)]) == 0
    assert f"{sweep / '0_model=vit'}: skipped, already profiled" in capsys.readouterr().out


def refusal(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.strip()


def test_an_unknown_part_is_refused_with_the_known_ones(run, capsys):
    assert refusal([str(run), "--parts", "calibration", "vibes"], capsys) == (
        f"vitbench-evaluate: --parts vibes: no such part; the parts are {', '.join(PARTS)}."
    )
    assert "evaluation" not in record(run)


def test_a_run_folder_without_a_checkpoint_is_refused(run, capsys):
    shutil.rmtree(run / "checkpoints")
    assert refusal([str(run)], capsys) == (
        f"vitbench-evaluate: {run} is neither a .ckpt file nor a run folder with checkpoints/best-*.ckpt."
    )


def test_a_run_that_is_not_a_classifier_is_refused(tmp_path, capsys):
    torch.manual_seed(0)
    mae = MAEModule(img_size=16, patch_size=4, embed_dim=32, depth=1, num_heads=2, decoder_dim=16,
                    decoder_depth=1, decoder_heads=2)  # fmt: skip
    checkpoint = tmp_path / "mae.ckpt"
    torch.save({"state_dict": mae.state_dict(), "vitbench": {"module": "MAEModule"}}, checkpoint)
    assert refusal([str(checkpoint)], capsys) == (
        f"vitbench-evaluate: {checkpoint} holds a MAEModule, not a classifier: no part of vitbench-evaluate "
        f"applies to it (its parts, {', '.join(PARTS)}, profile classifiers)."
    )


def test_the_figures_reach_the_runs_wandb_run_resumed_by_its_id(run_with_wandb, capsys):
    trained = sorted((run_with_wandb / "wandb").glob("offline-run-*"))
    run_id = trained[0].name.rsplit("-", 1)[1]
    assert wandb_settings(run_with_wandb) == {"project": "vitbench", "entity": None, "id": run_id}

    assert main([str(run_with_wandb)]) == 0

    assert f"W&B: run {run_id} resumed (offline), 9 figures" in capsys.readouterr().out
    resumed = sorted(set((run_with_wandb / "wandb").glob("offline-run-*")) - set(trained))
    assert [r.name.rsplit("-", 1)[1] for r in resumed] == [run_id]
    summary = json.loads(wandb_inspect(resumed[0], "--summary"))["summary"]
    assert {k: summary[f"evaluate/{k}"] for k in KEYS} == pytest.approx(
        {k: record(run_with_wandb)[k] for k in KEYS}
    )


def test_vitbench_compare_shows_the_figures_of_profiled_runs_only(run, tmp_path, capsys):
    from vitbench.compare import find_runs, load_records, write_report
    from vitbench.compare.report import task_sections

    plain = Path(shutil.copytree(run, tmp_path / "plain" / "run"))
    assert main([str(run)]) == 0

    assert task_sections(load_records(find_runs(plain)))[0].profiles == []
    df = load_records(find_runs(run))
    (calibration,) = task_sections(df)[0].profiles
    assert calibration.title == "Calibration"
    assert calibration.shown.loc[0, "ECE (%)"] == f"{100 * record(run)['ece_15']:.2f}"  # one seed: no ± std
    assert list(calibration.shown.columns[-3:]) == ["ECE (%)", "ECE scaled (%)", "T"]
    paths = write_report(df, tmp_path / "report")
    assert "ece_100_scaled_mean" in paths["results_csv"].read_text().splitlines()[0]
    assert "reliability diagram, raw and temperature-scaled" in paths["report_html"].read_text()


def test_the_parts_see_the_runs_own_test_split(run):
    from vitbench.data.datamodule import ImageDataModule
    from vitbench.evaluation.context import Context

    classifier = evaluate.load_classifier(run)
    datamodule = ImageDataModule.from_hparams(classifier.data)
    datamodule.setup()
    context = Context(classifier, datamodule, torch.device("cpu"), 0, run)
    logits, labels = context.logits("test")
    # debug=fast tests 2 batches of 64, the whole synthetic test split (512 // 4 images).
    assert len(labels) == 128
    assert float((logits.argmax(-1) == labels).float().mean()) == record(run)["test_acc"]
    assert len(context.logits("val")[1]) == 128  # data.val_size of data=synthetic


def test_a_checkpoint_outside_a_run_folder_is_profiled_without_a_record(run, tmp_path, capsys):
    checkpoint = tmp_path / "loose" / "model.ckpt"
    checkpoint.parent.mkdir()
    shutil.copy(next((run / "checkpoints").glob("best-*.ckpt")), checkpoint)

    assert main([str(checkpoint)]) == 0

    out = capsys.readouterr().out
    assert f"results.json not written: none beside {checkpoint}" in out
    assert (checkpoint.parent / "pictures" / "reliability.png").is_file()
    assert "evaluation" not in record(run)


def test_the_corruptions_part_records_every_corruption_and_reads_its_cache_the_second_time(
    run, tmp_path, monkeypatch
):
    from vitbench.evaluation.corruptions import suite

    monkeypatch.setenv("VITBENCH_CACHE", str(tmp_path / "cache"))
    assert main([str(run), "--parts", "corruptions"]) == 0

    after = record(run)
    names = suite(1)  # the synthetic data is grey
    for name in names:
        errors = [after[f"corruption_err_{name}_{s}"] for s in range(1, 6)]
        assert all(0 <= e <= 1 for e in errors)
        assert after[f"corruption_err_{name}_mean"] == pytest.approx(sum(errors) / 5)
    means = [after[f"corruption_err_{name}_mean"] for name in names]
    assert after["corruption_err_mean"] == pytest.approx(sum(means) / len(means))
    cached = sorted((tmp_path / "cache" / "corruptions").iterdir())
    assert len(cached) == 5 * len(names)

    # Measured again: the same figures, from the cached copies (read, not built again).
    stamps = {path: path.stat().st_mtime_ns for path in cached}
    assert main([str(run), "--parts", "corruptions", "--redo"]) == 0
    figures = {k: v for k, v in after.items() if k.startswith("corruption_err")}
    assert {k: v for k, v in record(run).items() if k.startswith("corruption_err")} == figures
    assert {path: path.stat().st_mtime_ns for path in cached} == stamps


def test_all_names_every_part_in_the_registrys_order():
    from vitbench.evaluation.parts import check_parts

    assert check_parts(["corruptions", "all"]) == list(PARTS)
    assert check_parts(["corruptions", "calibration", "corruptions"]) == ["corruptions", "calibration"]
