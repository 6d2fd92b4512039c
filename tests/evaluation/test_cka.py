"""Linear CKA: 1 for a representation and itself, unchanged by an orthogonal rotation and an isotropic
scaling, the squared correlation for one feature; `vitbench-evaluate --cka` writes the matrix of two
runs and refuses runs of different data or a model that is not a classifier with one line."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from vitbench.evaluation.cka import data_difference, linear_cka
from vitbench.evaluation.evaluate import main
from vitbench.pretraining import MAEModule


def test_linear_cka_of_a_representation_with_itself_is_one_and_survives_rotation_and_scaling():
    torch.manual_seed(0)
    x = torch.randn(40, 12)
    rotation, _ = torch.linalg.qr(torch.randn(12, 12, dtype=torch.float64))  # orthogonal (12, 12)

    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x.double() @ rotation) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, 3.7 * x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x.reshape(40, 3, 2, 2), x) == pytest.approx(1.0, abs=1e-12)  # flattened per input
    assert linear_cka(x, torch.randn(40, 12)) < 0.5


def test_linear_cka_of_one_feature_is_its_squared_correlation():
    x = torch.tensor([[1.0], [2.0], [3.0], [4.0]])  # centred: -1.5, -0.5, 0.5, 1.5
    y = torch.tensor([[1.0], [3.0], [2.0], [4.0]])  # centred: -1.5, 0.5, -0.5, 1.5
    # <x, y> = 2.25 - 0.25 - 0.25 + 2.25 = 4; |x|^2 = |y|^2 = 5: CKA = 16 / 25.
    assert linear_cka(x, y) == pytest.approx(16 / 25, abs=1e-12)
    assert (
        linear_cka(torch.tensor([[1.0], [-1.0], [1.0], [-1.0]]), torch.tensor([[1.0], [1.0], [-1.0], [-1.0]]))
        == 0
    )


def test_where_the_files_lie_is_not_a_difference_of_data():
    fashion = {
        "source": {"_target_": "FashionMNIST", "root": None, "download": False},
        "img_size": 28,
        "in_chans": 1,
    }
    assert data_difference(fashion, {**fashion, "source": {**fashion["source"], "root": "/data"}}) is None
    assert data_difference(fashion, {**fashion, "img_size": 32}) == "img_size 28 against 32"


def test_two_runs_are_compared_stage_by_stage_into_run_as_pictures(run, tmp_path, capsys):
    other = Path(shutil.copytree(run, tmp_path / "other run"))

    assert main(["--cka", str(run), str(other)]) == 0

    png, matrix = run / "pictures" / "cka_other_run.png", run / "pictures" / "cka_other_run.json"
    assert f"{png}, {matrix}" in capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    found = json.loads(matrix.read_text())
    depth = len(found["rows"])
    assert found["rows"] == found["columns"] == [f"blocks.{i}" for i in range(depth)]
    # The same weights: every block is identical to its copy.
    assert [found["cka"][i][i] for i in range(depth)] == pytest.approx([1.0] * depth, abs=1e-9)
    assert all(0 <= v <= 1 + 1e-9 for row in found["cka"] for v in row)


def refusal(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.strip()


def test_runs_trained_on_different_data_are_refused(run, tmp_path, capsys):
    other = Path(shutil.copytree(run, tmp_path / "other"))
    (best,) = (other / "checkpoints").glob("best-*.ckpt")
    checkpoint = torch.load(best, map_location="cpu", weights_only=False)
    checkpoint["datamodule_hyper_parameters"]["img_size"] = 32
    torch.save(checkpoint, best)

    assert refusal(["--cka", str(run), str(other)], capsys) == (
        f"vitbench-evaluate: --cka: {next((run / 'checkpoints').glob('best-*.ckpt'))} and {best} were trained "
        "on different data (img_size 28 against 32); CKA compares two runs of one dataset on the same test images."
    )
    assert not (run / "pictures" / "cka_other.json").exists()


def test_a_model_that_is_not_a_classifier_is_refused(run, tmp_path, capsys):
    torch.manual_seed(0)
    mae = MAEModule(img_size=16, patch_size=4, embed_dim=32, depth=1, num_heads=2, decoder_dim=16,
                    decoder_depth=1, decoder_heads=2)  # fmt: skip
    checkpoint = tmp_path / "mae.ckpt"
    torch.save({"state_dict": mae.state_dict(), "vitbench": {"module": "MAEModule"}}, checkpoint)

    assert refusal(["--cka", str(run), str(checkpoint)], capsys).startswith(
        f"vitbench-evaluate: {checkpoint} holds a MAEModule, not a classifier"
    )
    assert refusal(["--cka", str(run), str(run), str(run)], capsys) == (
        f"vitbench-evaluate: --cka takes its two runs alone: drop {run}."
    )
