"""Write the comparison: results.md, results.csv, the PNG plots and a self-contained report.html.

One table per task present (classification, denoising, pretraining), each under its own heading,
followed by its profile's tables (`vitbench.compare.profile`) where the runs were profiled.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from vitbench.compare.numeric import KeyView, key_views
from vitbench.compare.plots import model_colors, plot_pngs, png_bytes
from vitbench.compare.profile import ProfileTable, derived_figures, profile_tables
from vitbench.compare.samples import CLASSIFIER_PICTURES, PictureSet, SampleGrid, picture_sets, sample_grids
from vitbench.compare.table import (
    STD_NOTE,
    aggregate,
    failed_runs,
    format_table,
    sampling_note,
    tasks_present,
    to_markdown,
)
from vitbench.compare.tasks import all_tasks, get_task
from vitbench.run.task_definition import Metric

TITLE = "vitbench comparison"
FAILED_TITLE = "Failed or unfinished runs"
SAMPLES_NOTE = "One grid per group of the denoising table (its run with the lowest seed), one row per class."
# Inline style only: the report opens offline and carries no URL at all (links go to the run
# folders, relative to the report). Sized for a laptop screen: wide tables scroll on their own.
CSS = """
body { font-family: system-ui, sans-serif; margin: 0 auto; padding: 1em 2em; max-width: 80em; color: #222; }
nav { position: sticky; top: 0; background: #fff; padding: .5em 0; border-bottom: 1px solid #ddd; }
nav a { margin-right: 1.2em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
td.text, th.text { text-align: left; }
th { background: #f3f3f3; }
tr.failed td { background: #fdecea; }
img { max-width: 100%; height: auto; display: block; margin: 1em 0; }
img.samples { min-width: 24em; image-rendering: pixelated; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
.plots figure { margin: 0; flex: 1 1 36em; max-width: 48em; }
details { margin: .5em 0; }
summary { cursor: pointer; font-weight: 600; }
"""
RUNS_TITLE = "Every run"
PICTURES_NOTE = (
    "Each group's test pictures (vitbench.classification.pictures, written at the run's test end) from its run with the "
    "lowest seed: the confusion matrix, the most confident mistakes, and for ViT and DeiT the attention rollout."
)


@dataclass
class TaskSection:
    """One task's part of the report.

    Attributes:
        task: "classification" or "denoising".
        table: its `aggregate` table (what results.csv holds).
        shown: its `format_table` (what people read).
        note: a line under the table ("" for none): the sampling settings its runs share (denoising).
        profiles: the tables of its profile's parts that some run holds (calibration, ...).
    """

    task: str
    table: pd.DataFrame
    shown: pd.DataFrame
    note: str
    profiles: list[ProfileTable] = field(default_factory=list)

    @property
    def title(self) -> str:
        return get_task(self.task).title


def task_sections(df: pd.DataFrame, by: Sequence[str] | None = None) -> list[TaskSection]:
    """A `TaskSection` for each task present in `df` (from `load_records`), classification first;
    its table holds the figures derived across its runs too (CE, mCE, ...: results.csv)."""
    sections = []
    for task in tasks_present(df):
        derived = derived_figures(df, task)
        table = aggregate(df.join(derived.figures), by, task, extra=derived.keys)
        profiles = profile_tables(table, task, derived)
        sections.append(
            TaskSection(task, table, format_table(table, task), sampling_note(df, task), profiles)
        )
    return sections


def _profile_markdown(profile: ProfileTable) -> list[str]:
    return [
        f"### {profile.title}",
        to_markdown(profile.shown),
        *profile.notes,
    ]


def sections_markdown(sections: Sequence[TaskSection]) -> str:
    """Each task's table under its "## <title>" heading, its note below; what the CLI prints."""
    blocks = []
    for section in sections:
        blocks += [
            f"## {section.title}",
            to_markdown(section.shown),
            *([section.note] if section.note else []),
            *(block for profile in section.profiles for block in _profile_markdown(profile)),
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


def _markdown(
    df: pd.DataFrame, sections: Sequence[TaskSection], views: Sequence[KeyView], failed: pd.DataFrame
) -> str:
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
    parts = ['<h2 id="samples">Samples</h2>', f"<p>{html.escape(SAMPLES_NOTE)}</p>"]
    for grid in grids:
        parts.append(f"<h3>{html.escape(grid.title)}</h3>")
        missing = f"<p>No readable samples.png in {html.escape(grid.source)}.</p>"
        parts.append(_img(f"samples {grid.group}", grid.png, "samples") if grid.png else missing)
    return "\n".join(parts)


def _table(frame: pd.DataFrame) -> str:
    return f'<div class="scroll">{frame.to_html(index=False, border=0)}</div>'


def _profile_html(profile: ProfileTable) -> str:
    notes = "".join(f"\n<p>{html.escape(note)}</p>" for note in profile.notes)
    return f"\n<h3>{html.escape(profile.title)}</h3>\n{_table(profile.shown)}{notes}"


def _link(target: Path, out: Path, text: str) -> str:
    """A link to a local file or folder, relative to the report folder `out`; the text alone when
    `target` does not exist here (a W&B run, a moved folder)."""
    if not target.exists():
        return html.escape(text)
    href = quote(os.path.relpath(target.resolve(), out.resolve()))
    return f'<a href="{html.escape(href)}">{html.escape(text)}</a>'


def _runs_html(df: pd.DataFrame, out: Path) -> str:
    """Every run, finished or not: its folder and results.json (links), seed, overrides, the task's
    headline figure, and why it failed."""
    tasks = all_tasks()
    rows = []
    for run in df.sort_values(["status", "source"], kind="stable").itertuples():
        source = Path(str(run.source))
        figure = ""
        if run.status == "finished" and (task := tasks.get(str(run.task))) is not None:
            figure = headline_text(task.metric(task.headline), getattr(run, task.headline, math.nan))
        seed = "" if pd.isna(run.seed) else str(int(run.seed))
        cells = [
            _link(source, out, source.name or str(source)),
            _link(source / "results.json", out, "results.json") if (source / "results.json").is_file() else "",
            html.escape(str(run.status)), html.escape(str(run.model)), seed,
            html.escape(" ".join(run.overrides)), html.escape(figure),
            html.escape("" if run.status == "finished" else str(run.reason)),
        ]  # fmt: skip
        css = ' class="failed"' if run.status != "finished" else ""
        rows.append(f"<tr{css}>" + "".join(f'<td class="text">{c}</td>' for c in cells) + "</tr>")
    header = "".join(
        f'<th class="text">{h}</th>'
        for h in ("run folder", "record", "status", "model", "seed", "overrides", "result", "why it failed")
    )
    return f'<div class="scroll"><table id="runs"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def headline_text(metric: Metric, value: float) -> str:
    """A run's headline figure as its column shows it, under the column's name ("test acc (%) 85.60")."""
    if pd.isna(value):
        return ""
    return f"{metric.header or metric.key} {value * metric.scale:{metric.fmt}}"


def _pictures_html(sets: Sequence[PictureSet]) -> str:
    """The "Pictures" section: each group's test pictures, folded (the first group open)."""
    if not any(p.pngs for p in sets):
        return ""
    parts = ['<h2 id="pictures">Pictures</h2>', f"<p>{html.escape(PICTURES_NOTE)}</p>"]
    for i, picture_set in enumerate(sets):
        if not picture_set.pngs:
            continue
        images = "\n".join(
            f"<figure><figcaption>{html.escape(CLASSIFIER_PICTURES[name])}</figcaption>"
            f"{_img(f'{name} {picture_set.group}', png)}</figure>"
            for name, png in picture_set.pngs.items()
        )
        parts.append(
            f"<details{' open' if i == 0 else ''}><summary>{html.escape(picture_set.title)}</summary>\n"
            f'<div class="plots">{images}</div></details>'
        )
    return "\n".join(parts)


def _html(
    df: pd.DataFrame,
    out: Path,
    sections: Sequence[TaskSection],
    views: Sequence[KeyView],
    failed: pd.DataFrame,
    pngs: dict[str, bytes],
    grids: Sequence[SampleGrid],
    pictures: Sequence[PictureSet],
) -> str:
    tables = "\n".join(
        f'<h2 id="{s.task}">{html.escape(s.title)}</h2>\n{_table(s.shown)}'
        + (f"\n<p>{html.escape(s.note)}</p>" if s.note else "")
        + "".join(_profile_html(p) for p in s.profiles)
        for s in sections
    )
    tables += "".join(
        f"\n<h3>{html.escape(v.title)}</h3>\n{_table(v.shown)}"
        + (f"\n<h3>{html.escape(v.gap_title)}</h3>\n{_table(v.gap_shown)}" if v.gap_shown is not None else "")
        for v in views
    )
    images = "\n".join(
        f"<figure><figcaption>{html.escape(name)}</figcaption>{_img(name, png)}</figure>"
        for name, png in pngs.items()
    )
    failed_html = _table(failed) if len(failed) else "<p>None.</p>"
    links = [(s.task, s.title.split(" (")[0]) for s in sections] + [("plots", "Plots")]
    links += [("samples", "Samples")] if grids else []
    links += [("pictures", "Pictures")] if any(p.pngs for p in pictures) else []
    links += [("runs", RUNS_TITLE), ("failed", FAILED_TITLE)]
    nav = "".join(f'<a href="#{anchor}">{html.escape(text)}</a>' for anchor, text in links)
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{TITLE}</title><style>{CSS}</style></head>
<body>
<h1>{TITLE}</h1>
<nav>{nav}</nav>
<p>{html.escape(_summary(df))}</p>
{tables}
<h2 id="plots">Plots</h2>
<div class="plots">{images}</div>
{_samples_html(grids)}
{_pictures_html(pictures)}
<h2 id="runs">{RUNS_TITLE}</h2>
{_runs_html(df, out)}
<h2 id="failed">{FAILED_TITLE}</h2>
{failed_html}
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
    classification = [s.table for s in sections if s.task == "classification"]
    pictures = picture_sets(df, classification[0]) if classification else []

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
    paths["report_html"].write_text(_html(df, out, sections, views, failed, pngs, grids, pictures))
    return paths
