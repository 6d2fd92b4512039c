"""The pretraining table (MAE runs: probe accuracies, reconstruction loss, cost), and the probe's
columns in a classification table whose runs were probed with vitbench-probe."""

import math

from fake_runs import fake_record

from vitbench.compare import RunRecord, aggregate, format_table, load_records
from vitbench.compare.records import check_results
from vitbench.compare.table import tasks_present
from vitbench.run.results import RECORD_FORMAT


def fake_mae_record(seed: int, mask_ratio: str) -> dict:
    return {
        "format": RECORD_FORMAT, "task": "pretraining", "model": "mae", "dataset": "fashion_mnist", "seed": seed,
        "overrides": ["model=mae", f"model.mask_ratio={mask_ratio}", f"seed={seed}"], "params": 803_840,
        "gflops": 0.0118, "train_images_per_s": 2000.0, "peak_memory_mb": 900.0, "wall_time_s": 600.0 + 60 * seed,
        "val_loss_best": 0.5 + 0.01 * seed, "test_loss": 0.51, "knn_acc": 0.80 + 0.02 * seed,
        "linear_acc": 0.78 + 0.02 * seed, "train_images_seen": 164_352,
    }  # fmt: skip


def frame(records: list[dict]):
    return load_records(
        [RunRecord(f"run{i}", r["overrides"], r, check_results(r)) for i, r in enumerate(records)]
    )


def test_pretraining_runs_get_their_own_table_with_the_probe_and_the_cost():
    df = frame(
        [
            fake_mae_record(0, "0.75"),
            fake_mae_record(1, "0.75"),
            fake_mae_record(0, "0.5"),
            fake_record("vit", "0.0", 0),
        ]
    )
    assert tasks_present(df) == ["classification", "pretraining"]
    table = aggregate(df, task="pretraining")
    assert list(table["model.mask_ratio"]) == ["0.5", "0.75"] and list(table["n"]) == [1, 2]
    shown = format_table(table, "pretraining")
    assert list(shown.columns[:6]) == [
        "model",
        "model.mask_ratio",
        "k-NN acc (%)",
        "linear probe acc (%)",
        "val loss best",
        "test loss",
    ]
    row = shown.iloc[1]
    std = 100 * 0.02 / math.sqrt(2)  # two seeds 2 points apart
    assert row["k-NN acc (%)"] == f"81.00 ± {std:.2f}" and row["linear probe acc (%)"] == f"79.00 ± {std:.2f}"
    assert row["images seen (M)"] == "0.16" and row["wall time (min)"] == "10.5 ± 0.7"
    assert "k-NN acc (%)" not in format_table(aggregate(df, task="classification"), "classification").columns


def test_a_probed_classifier_shows_its_probe_beside_its_accuracy():
    probed = {**fake_record("vit", "0.0", 0), "knn_acc": 0.85, "linear_acc": 0.86}
    shown = format_table(
        aggregate(frame([probed, fake_record("deit", "0.0", 0)]), task="classification"), "classification"
    )
    assert list(shown["k-NN acc (%)"]) == ["", "85.00"] and list(shown["linear probe acc (%)"]) == [
        "",
        "86.00",
    ]


def test_a_pretraining_run_without_its_probe_is_unfinished():
    # linear_acc is the headline: the probe chooses its setting by it, the study compares encoders by it.
    assert check_results({**fake_mae_record(0, "0.75"), "linear_acc": None}).startswith(
        "unfinished: linear_acc is null (stopped before the test, at whose end the encoder is probed)"
    )
