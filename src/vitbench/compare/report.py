"""Write the comparison: results.md, results.csv, the PNG plots and a self-contained report.html.

One table per task present (classification, denoising), each under its own heading.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vitbench.compare.numeric import KeyView, key_views
from vitbench.compare.plots import model_colors, plot_pngs, png_bytes
from vitbench.compare.samples import SampleGrid, sample_grids
from vitbench.compare.table import (
    STD_NOTE,
    failed_runs,
    format_table,
    sampling_note,
    tables_by_task,
    to_markdown,
)

TITLE = "vitbench comparison"
FAILED_TITLE = "Failed or unfinished runs"
TASK_TITLES = {
    "classification": "Classification",
    "denoising": "Denoising (FID in vitbench-CNN features; not comparable with Inception FID)",
}
SAMPLES_NOTE = "One grid per group of the denoising table (its run with the lowest seed), one row per class."
# Inline style only: the report opens offline and carries no URL at all.
CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f3f3f3; }
img { max-width: 48em; display: block; margin: 1em 0; }
img.samples { min-width: 24em; image-rendering: pixelated; }
"""


@dataclass
class TaskSection:
    """One task's part of the report.

    Attributes:
        task: "classification" or "denoising".
        table: its `aggregate` table (what results.csv holds).
        shown: its `format_table` (what people read).
        note: a line under the table ("" for none): the sampling settings the denoising runs share.
    """

    task: str
    table: pd.DataFrame
    shown: pd.DataFrame
    note: str

    @property
    def title(self) -> str:
        return TASK_TITLES[self.task]


def task_sections(df: pd.DataFrame, by: Sequence[str] | None = None) -> list[TaskSection]:
    """A `TaskSection` for each task present in `df` (from `load_records`), classification first."""
    return [
        TaskSection(task, table, format_table(table, task), sampling_note(df) if task == "denoising" else "")
        for task, table in tables_by_task(df, by).items()
    ]


def sections_markdown(sections: Sequence[TaskSection]) -> str:
    """Each task's table under its "## <title>" heading, its note below; what the CLI prints."""
    blocks = []
    for section in sections:
        blocks += [
            f"## {section.title}",
            to_markdown(section.shown),
            *([section.note] if section.note else []),
        ]
    return "\n\n".join(blocks)


def _summary(df: pd.DataFrame) -> str:
    finished = int((df["status"] == "finished").sum())
    return f"{finished} finished run(s), {len(df) - finished} failed or unfinished; every figure: {STD_NOTE}."


def views_markdown(views: Sequence[KeyView]) -> str:
    """Each numeric key's wide tables (the metric, then the gap to the reference) under headings."""
    blocks = []
    for view in views:
        blocks += [f"### {view.title}", to_markdown(view.shown)]
        if view.gap_shown is not None:
            blocks += [f"### {view.gap_title}", to_markdown(view.gap_shown)]
    return "\n\n".join(blocks)


def _markdown(df: pd.DataFrame, sections: Sequence[TaskSection], views: Sequence[KeyView], failed: pd.DataFrame) -> str:
    parts = [f"# {TITLE}", _summary(df), sections_markdown(sections)]
    parts += [views_markdown(views)] if views else []
    parts += [f"## {FAILED_TITLE}"]
    parts.append(to_markdown(failed) if len(failed) else "None.")
    return "\n\n".join(parts) + "\n"


def _img(alt: str, png: bytes, css_class: str = "") -> str:
    data = base64.b64encode(png).decode("ascii")
    class_attr = f' class="{css_class}"' if css_class else ""
    return f'<img alt="{html.escape(alt)}"{class_attr} src="data:image/png;base64,{data}">'


def _samples_html(grids: Sequence[SampleGrid]) -> str:
    """The "Samples" section: each group's grid under its title; "" when there is no denoising run."""
    if not grids:
        return ""
    parts = ["<h2>Samples</h2>", f"<p>{html.escape(SAMPLES_NOTE)}</p>"]
    for grid in grids:
        parts.append(f"<h3>{html.escape(grid.title)}</h3>")
        missing = f"<p>No readable samples.png in {html.escape(grid.source)}.</p>"
        parts.append(_img(f"samples {grid.group}", grid.png, "samples") if grid.png else missing)
    return "\n".join(parts)


def _html(
    df: pd.DataFrame,
    sections: Sequence[TaskSection],
    views: Sequence[KeyView],
    failed: pd.DataFrame,
    pngs: dict[str, bytes],
    grids: Sequence[SampleGrid],
) -> str:
    tables = "\n".join(
        f"<h2>{html.escape(s.title)}</h2>\n{s.shown.to_html(index=False, border=0)}"
        + (f"\n<p>{html.escape(s.note)}</p>" if s.note else "")
        for s in sections
    )
    tables += "".join(
        f"\n<h3>{html.escape(v.title)}</h3>\n{v.shown.to_html(index=False, border=0)}"
        + (f"\n<h3>{html.escape(v.gap_title)}</h3>\n{v.gap_shown.to_html(index=False, border=0)}" if v.gap_shown is not None else "")
        for v in views
    )
    images = "\n".join(f"<h3>{html.escape(name)}</h3>\n{_img(name, png)}" for name, png in pngs.items())
    failed_html = failed.to_html(index=False, border=0) if len(failed) else "<p>None.</p>"
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{TITLE}</title><style>{CSS}</style></head>
<body>
<h1>{TITLE}</h1>
<p>{html.escape(_summary(df))}</p>
{tables}
<h2>{FAILED_TITLE}</h2>
{failed_html}
<h2>Plots</h2>
{images}
{_samples_html(grids)}
</body>
</html>
"""


def write_report(
    df: pd.DataFrame,
    out_dir: str | Path,
    by: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    reference: str | None = None,
) -> dict[str, Path]:
    """Write the comparison of the runs in `df` (from `load_records`) into `out_dir`.

    results.csv holds the classification table when there are classification runs, else the only
    task's table; results_denoising.csv holds the denoising table whenever there are denoising runs
    (so a denoising-only comparison writes the same table twice, and scripts can always read it
    from results_denoising.csv).

    Args:
        df: one row per run of any task, failed runs included (they are listed, not aggregated).
        out_dir: created if missing; existing report files are replaced.
        by: group keys, as for `aggregate` (the same for every task).
        metrics: what to plot against each numeric swept key (`key_views`; default test_acc, fid).
        reference: the model whose gap the others are measured by (default cnn where present).

    Returns:
        The paths written, by name: results_md, results_csv, results_denoising_csv (with denoising
        runs), report_html and one per plot.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections = task_sections(df, by)
    failed = failed_runs(df)
    pngs = plot_pngs(df, by)
    colors = model_colors(df["model"].dropna())
    views = [view for s in sections for view in key_views(df, s.table, s.task, colors, metrics, reference)]
    pngs.update({stem: png_bytes(fig) for view in views for stem, fig in view.figures.items()})
    denoising = [s.table for s in sections if s.task == "denoising"]
    grids = sample_grids(df, denoising[0]) if denoising else []

    paths = {"results_md": out / "results.md", "results_csv": out / "results.csv"}
    paths["results_md"].write_text(_markdown(df, sections, views, failed))
    sections[0].table.to_csv(paths["results_csv"], index=False)  # n=1 leaves the std cells empty
    if denoising:
        paths["results_denoising_csv"] = out / "results_denoising.csv"
        denoising[0].to_csv(paths["results_denoising_csv"], index=False)
    for name, png in pngs.items():
        paths[name] = out / f"{name}.png"
        paths[name].write_bytes(png)
    paths["report_html"] = out / "report.html"
    paths["report_html"].write_text(_html(df, sections, views, failed, pngs, grids))
    return paths
