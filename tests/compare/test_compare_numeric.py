"""vitbench.compare.numeric: a metric against a numeric swept key, and the gap to a reference model."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from fake_runs import STUDY_ACC, STUDY_SIZES, write_study
from PIL import Image

from vitbench.compare import aggregate, find_runs, load_records, main, write_report
from vitbench.compare.numeric import gap_table, key_views, metric_against_key, numeric_keys, wide_table
from vitbench.compare.plots import model_colors


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study") / "sweep"
    write_study(root)
    return root, load_records(find_runs(root))


def test_the_size_is_a_numeric_key_and_the_table_sorts_it_as_a_number(study):
    _, df = study
    table = aggregate(df)
    assert numeric_keys(table) == ["data.train_subset"]
    assert table["data.train_subset"].tolist() == ["1000", "10000", "55000"] * 2
    cnn = table[table["model"] == "cnn"]
    assert cnn["test_acc_mean"].tolist() == pytest.approx([a + 0.005 for a in STUDY_ACC["cnn"]])
    assert cnn["test_acc_std"].tolist() == pytest.approx([0.01 / math.sqrt(2)] * 3)


def test_gap_to_the_cnn_is_paired_by_seed(study):
    _, df = study
    gaps = gap_table(df, ["model", "data.train_subset"], "data.train_subset", "test_acc", "cnn")
    assert gaps["model"].tolist() == ["vit"] * 3 and gaps["n"].tolist() == [2, 2, 2]
    expected = [v - c for v, c in zip(STUDY_ACC["vit"], STUDY_ACC["cnn"], strict=True)]
    assert gaps["gap_mean"].tolist() == pytest.approx(expected)
    assert gaps["gap_std"].tolist() == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)  # the seed shift cancels


def test_rows_the_reference_never_varies_pair_with_it_by_size_and_seed(study):
    """A study's ViT fine-tuned from a pretraining run (init_from, set only on its rows) gets its gap
    to the one CNN of each size and seed, as the ViT from scratch does."""
    _, df = study
    vit = df[df["model"] == "vit"]
    pretrained = vit.assign(
        overrides=[[*o, "init_from=mae/run"] for o in vit["overrides"]], test_acc=vit["test_acc"] + 0.05
    )
    both = pd.concat([df, pretrained], ignore_index=True)
    keys = ["model", "data.train_subset", "init_from"]
    gaps = gap_table(both, keys, "data.train_subset", "test_acc", "cnn")
    assert gaps["init_from"].tolist() == ["(default)", "mae/run"] * 3 and gaps["n"].tolist() == [2] * 6
    scratch = [v - c for v, c in zip(STUDY_ACC["vit"], STUDY_ACC["cnn"], strict=True)]
    assert gaps["gap_mean"].tolist() == pytest.approx([g + d for g in scratch for d in (0.0, 0.05)])


def _with_pretrained(df: pd.DataFrame, *sources: str) -> pd.DataFrame:
    """The study's runs and, per source, its ViT runs again as if fine-tuned from that run."""
    vit = df[df["model"] == "vit"]
    return pd.concat(
        [df, *(vit.assign(overrides=[[*o, f"init_from={s}"] for o in vit["overrides"]]) for s in sources)],
        ignore_index=True,
    )


def test_legend_names_the_keys_a_line_sets_and_paths_by_their_end(study):
    """A study's rows read "vit" and "vit, init_from=mae/run", not "vit, init_from=(default)" and the
    whole path; the legend sits below the axes, one label per line."""
    _, df = study
    table = aggregate(_with_pretrained(df, "multirun/pretrain_study/mae/run"))
    view = wide_table(table, "data.train_subset", "test_acc_mean", "test_acc_std", 100.0)
    assert view["model"].tolist() == ["cnn", "vit", "vit, init_from=mae/run"]
    fig = metric_against_key(table, "data.train_subset", "test_acc", model_colors(table["model"]))
    (legend,) = fig.legends
    assert [text.get_text() for text in legend.get_texts()] == view["model"].tolist()
    assert fig.axes[0].get_legend() is None
    # Two sources with the same last parts keep their whole paths, so no two lines read the same.
    table = aggregate(_with_pretrained(df, "a/ps/mae/run", "b/ps/mae/run"))
    view = wide_table(table, "data.train_subset", "test_acc_mean", "test_acc_std", 100.0)
    assert view["model"].tolist() == [
        "cnn",
        "vit",
        "vit, init_from=a/ps/mae/run",
        "vit, init_from=b/ps/mae/run",
    ]


def test_plot_has_a_line_and_band_per_model_on_a_log_axis(study):
    _, df = study
    table = aggregate(df)
    fig = metric_against_key(table, "data.train_subset", "test_acc", model_colors(table["model"]))
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"  # 1,000 to 55,000 spans more than a decade
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"cnn", "vit"}
    assert lines["vit"].get_xdata().tolist() == list(STUDY_SIZES)
    assert lines["vit"].get_ydata().tolist() == pytest.approx([100 * a + 0.5 for a in STUDY_ACC["vit"]])
    assert len(ax.collections) == 2  # one band each


def test_a_key_within_a_decade_stays_linear(study):
    _, df = study
    df = df[df["overrides"].map(lambda o: "data.train_subset=1000" not in o)]
    table = aggregate(df)
    fig = metric_against_key(table, "data.train_subset", "test_acc", model_colors(table["model"]))
    assert fig.axes[0].get_xscale() == "linear"


def test_views_default_to_test_acc_and_the_cnn_reference(study):
    _, df = study
    table = aggregate(df)
    (view,) = key_views(df, table, "classification", model_colors(table["model"]))
    assert view.key == "data.train_subset" and view.metric == "test_acc"
    assert set(view.figures) == {"test_acc_vs_data_train_subset", "test_acc_gap_to_cnn_vs_data_train_subset"}
    assert view.shown.columns.tolist() == [
        "model",
        "train_subset=1000",
        "train_subset=10000",
        "train_subset=55000",
    ]
    assert view.shown.iloc[1].tolist() == ["vit", "50.50 ± 0.71", "70.50 ± 0.71", "88.50 ± 0.71"]
    assert view.gap_shown.iloc[0].tolist() == ["vit", "-20.00 ± 0.00", "-10.00 ± 0.00", "-2.00 ± 0.00"]
    # No reference model: no gap; another metric on request.
    (view,) = key_views(df, table, "classification", model_colors(table["model"]), ["val_acc_best"], "vit")
    assert view.metric == "val_acc_best" and view.gap_shown.iloc[0, 0] == "cnn"


def test_report_and_cli_carry_the_plots_and_tables(study, tmp_path, capsys):
    root, df = study
    paths = write_report(df, tmp_path / "report")
    for name in ("test_acc_vs_data_train_subset", "test_acc_gap_to_cnn_vs_data_train_subset"):
        with Image.open(paths[name]) as image:
            assert image.format == "PNG" and image.width >= 400
    text = paths["results_md"].read_text()
    assert "### test accuracy (%) by data.train_subset (mean ± std over seeds)" in text
    assert "| vit | -20.00 ± 0.00 | -10.00 ± 0.00 | -2.00 ± 0.00 |" in text
    html = paths["report_html"].read_text()
    assert 'alt="test_acc_gap_to_cnn_vs_data_train_subset"' in html and "paired by seed" in html
    csv = pd.read_csv(paths["results_csv"])
    assert csv["data.train_subset"].tolist() == [1000, 10000, 55000] * 2

    assert (
        main([str(root), "--out", str(tmp_path / "cli"), "--reference", "vit", "--metric", "val_acc_best"])
        == 0
    )
    out = capsys.readouterr().out
    assert "best validation accuracy minus vit's (points), paired by seed, by data.train_subset" in out
    assert "| cnn | 20.00 ± 0.00 | 10.00 ± 0.00 | 2.00 ± 0.00 |" in out


def test_cli_refuses_an_unknown_reference(study, tmp_path, capsys):
    root, _ = study
    assert main([str(root), "--out", str(tmp_path), "--reference", "resnet"]) == 2
    assert "--reference resnet: no run of that model here" in capsys.readouterr().err


def test_report_is_a_dashboard_page_with_pictures_and_links(study, tmp_path):
    """Each group's pictures (its lowest seed's, in the table's order), and a row per run linking
    its folder and results.json relative to the report."""
    import base64
    import io
    import re
    from urllib.parse import unquote

    from fake_runs import picture_color

    root, df = study
    out = tmp_path / "report"
    text = write_report(df, out)["report_html"].read_text()
    pictures = text.split('<h2 id="pictures">', 1)[1].split("<h2", 1)[0]
    groups = re.findall(r"<summary>([^<]+)</summary>", pictures)
    assert groups == [
        f"{m} data.train_subset={n}: test acc {100 * a + 0.5:.2f} ± 0.71 %, pictures of seed 0"
        for m in STUDY_ACC for n, a in zip(STUDY_SIZES, STUDY_ACC[m], strict=True)
    ]  # fmt: skip
    images = re.findall(
        r'<img alt="(\w+) (\w+) data.train_subset=(\d+)" src="data:image/png;base64,([^"]+)"', pictures
    )
    assert len(images) == 3 * 2 + 3 * 3  # the CNN has no attention picture
    for name, model, size, data in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            assert image.convert("RGB").getpixel((0, 0)) == picture_color(model, int(size), 0), name
    runs = text.split('<table id="runs">', 1)[1].split("</table>", 1)[0]
    hrefs = [unquote(h) for h in re.findall(r'href="([^"]+)"', runs)]
    assert len(hrefs) == 2 * 12  # folder and results.json of each of the 12 runs
    assert all((out / h).resolve().exists() and not h.startswith("/") for h in hrefs)
    assert {(out / h).resolve() for h in hrefs if h.endswith("results.json")} == set(
        root.resolve().glob("*/results.json")
    )
    assert "http://" not in text and "https://" not in text
