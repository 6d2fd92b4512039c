"""vitbench.compare.report: results.md, results.csv, the PNG plots and a self-contained report.html."""

from __future__ import annotations

import base64
import io
import re

import pandas as pd
import pytest
from fake_runs import write_sweep
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


def test_writes_every_file(report):
    assert set(report) == {"results_md", "results_csv", "report_html", *PLOTS}
    assert all(path.is_file() for path in report.values())


def test_results_csv_one_row_per_group(report):
    table = pd.read_csv(report["results_csv"])
    assert len(table) == 4
    assert {"model", "model.drop_path_rate", "n", "test_acc_mean", "test_acc_std", "gflops_mean"} <= set(
        table.columns
    )
    assert table["n"].tolist() == [2, 2, 2, 2]


def test_results_md_has_the_table_and_the_failed_runs(report):
    text = report["results_md"].read_text()
    assert "| vit | 0.1 | 72.65 ± 0.92 |" in text
    failed = text.split("## Failed or unfinished runs", 1)[1]
    assert "8_crashed" in failed and "model=vit model.drop_path_rate=0.1 seed=2" in failed
    assert "9_corrupt" in failed and "corrupt results.json" in failed


def test_report_html_is_self_contained(report):
    text = report["report_html"].read_text()
    assert "http://" not in text and "https://" not in text
    assert "72.65 ± 0.92" in text
    assert "model=deit model.drop_path_rate=0.0 seed=2" in text  # the corrupt job
    images = re.findall(r'<img alt="(\w+)" src="data:image/png;base64,([^"]+)"', text)
    assert [name for name, _ in images] == list(PLOTS)
    for _, data in images:
        assert Image.open(io.BytesIO(base64.b64decode(data))).format == "PNG"


@pytest.mark.parametrize("name", PLOTS)
def test_plots_are_real_images(report, name):
    with Image.open(report[name]) as image:
        assert image.format == "PNG"
        assert image.width >= 400 and image.height >= 300
        # Not a blank canvas: a plot has many colors (lines, text, markers).
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 20
