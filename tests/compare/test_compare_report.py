"""vitbench.compare.report: results.md, results.csv, the PNG plots and a self-contained report.html."""

from __future__ import annotations

import base64
import io
import re

import pandas as pd
import pytest
from fake_runs import sample_color, write_denoising_runs, write_sweep
from PIL import Image

from vitbench.compare import find_runs, load_records, write_report

PLOTS = ("acc_vs_gflops", "acc_vs_throughput", "val_curves")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The report of the fake sweep (written once: plotting is the slow part)."""
    root = tmp_path_factory.mktemp("runs") / "sweep"
    write_sweep(root)
    out = tmp_path_factory.mktemp("report")
    return write_report(load_records(find_runs(root)), out)


# drop_path_rate 0.0 / 0.1 is a numeric swept key: test accuracy is also plotted against it.
SWEEP_PNGS = (*PLOTS, "test_acc_vs_model_net_drop_path_rate")


def test_writes_every_file(report):
    assert set(report) == {"results_md", "results_csv", "report_html", *SWEEP_PNGS}
    assert all(path.is_file() for path in report.values())


def test_results_csv_one_row_per_group(report):
    table = pd.read_csv(report["results_csv"])
    assert len(table) == 4
    assert {"model", "model.net.drop_path_rate", "n", "test_acc_mean", "test_acc_std", "gflops_mean"} <= set(
        table.columns
    )
    assert table["n"].tolist() == [2, 2, 2, 2]


def test_results_md_has_the_table_and_the_failed_runs(report):
    text = report["results_md"].read_text()
    assert "| vit | 0.1 | 72.65 ± 0.92 |" in text
    failed = text.split("## Failed or unfinished runs", 1)[1]
    assert "8_crashed" in failed and "model=vit model.net.drop_path_rate=0.1 seed=2" in failed
    assert "9_corrupt" in failed and "corrupt results.json" in failed


def test_report_html_is_self_contained(report):
    text = report["report_html"].read_text()
    assert "http://" not in text and "https://" not in text
    assert "72.65 ± 0.92" in text
    assert "model=deit model.net.drop_path_rate=0.0 seed=2" in text  # the corrupt job
    images = re.findall(r'<img alt="(\w+)" src="data:image/png;base64,([^"]+)"', text)
    assert [name for name, _ in images] == list(SWEEP_PNGS)
    for _, data in images:
        assert Image.open(io.BytesIO(base64.b64decode(data))).format == "PNG"


@pytest.mark.parametrize("name", SWEEP_PNGS)
def test_plots_are_real_images(report, name):
    with Image.open(report[name]) as image:
        assert image.format == "PNG"
        assert image.width >= 400 and image.height >= 300
        # Not a blank canvas: a plot has many colors (lines, text, markers).
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 20


DENOISING_TITLE = "Denoising (FID in vitbench-CNN features; not comparable with Inception FID)"


@pytest.fixture(scope="module")
def mixed_report(tmp_path_factory):
    """The report of a folder of classification and denoising runs (written once)."""
    root = tmp_path_factory.mktemp("runs") / "mixed"
    write_denoising_runs(root, first_job=len(write_sweep(root)) + 2)
    return write_report(load_records(find_runs(root)), tmp_path_factory.mktemp("mixed_report"))


def test_mixed_report_writes_a_csv_per_task(mixed_report):
    assert set(mixed_report) == {
        "results_md",
        "results_csv",
        "results_denoising_csv",
        "report_html",
        *SWEEP_PNGS,
        "val_loss_curves",
    }
    classification = pd.read_csv(mixed_report["results_csv"])
    denoising = pd.read_csv(mixed_report["results_denoising_csv"])
    assert len(classification) == 4 and "test_acc_mean" in classification and "fid_mean" not in classification
    assert len(denoising) == 3 and {"fid_mean", "fid_std", "sample_acc_mean"} <= set(denoising.columns)


def test_mixed_results_md_has_a_section_per_task(mixed_report):
    text = mixed_report["results_md"].read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## Classification", f"## {DENOISING_TITLE}", "## Failed or unfinished runs"]
    denoising = text.split(DENOISING_TITLE, 1)[1].split("## Failed", 1)[0]
    assert "| model | model.prediction | FID (vitbench-CNN) | FID floor (real vs real) |" in denoising
    assert "| jit | eps | 23.75 ± 1.06 | 2.10 ± 0.14 | 86.00 ± 1.41 |" in denoising
    assert "Sampling: 1000 generated images, 20 Heun steps, CFG scale 2 in every run." in denoising
    assert "| vit | 0.1 | 72.65 ± 0.92 |" in text.split(DENOISING_TITLE, 1)[0]
    failed = text.split("## Failed or unfinished runs", 1)[1]
    assert "_unfinished" in failed and "unfinished: fid is null" in failed


def test_report_html_embeds_one_sample_grid_per_denoising_group(mixed_report):
    text = mixed_report["report_html"].read_text()
    assert "http://" not in text and "https://" not in text
    assert f'<h2 id="denoising">{DENOISING_TITLE}</h2>' in text
    grids = re.findall(
        r'<img alt="samples ([^"]*)" class="samples" src="data:image/png;base64,([^"]+)"', text
    )
    assert [group for group, _ in grids] == ["dit", "jit model.prediction=eps", "jit model.prediction=x"]
    for _, data in grids:
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            assert image.convert("RGB").getpixel((0, 0)) == sample_color(0)  # the lowest seed's grid
    assert text.count("data:image/png;base64") == len(SWEEP_PNGS) + 1 + len(
        grids
    )  # plots, loss curves, grids
    assert "jit model.prediction=eps: FID (vitbench-CNN) 23.75 ± 1.06, sample acc 86.00 ± 1.41 %" in text


def test_val_loss_curves_plot_is_a_real_image(mixed_report):
    with Image.open(mixed_report["val_loss_curves"]) as image:
        assert image.format == "PNG" and image.width >= 400
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 20


def test_denoising_only_report(tmp_path):
    write_denoising_runs(tmp_path / "runs")
    paths = write_report(load_records(find_runs(tmp_path / "runs")), tmp_path / "report")
    assert set(paths) == {
        "results_md",
        "results_csv",
        "results_denoising_csv",
        "report_html",
        "val_loss_curves",
    }
    assert paths["results_csv"].read_text() == paths["results_denoising_csv"].read_text()
    text = paths["results_md"].read_text()
    assert "## Classification" not in text and f"## {DENOISING_TITLE}" in text
    assert paths["report_html"].read_text().count('class="samples"') == 3
