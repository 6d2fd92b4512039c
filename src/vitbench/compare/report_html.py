"""report.html: the comparison as one self-contained page (tables, plots, samples, pictures, every run).

The page carries its PNGs inline and no URL at all, so it opens offline; its links go to the run
folders, relative to the report. :func:`vitbench.compare.report.write_report` writes it beside
results.md.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pandas as pd

from vitbench.compare.profile import ProfileTable
from vitbench.compare.samples import CLASSIFIER_PICTURES, PictureSet, SampleGrid
from vitbench.compare.tasks import all_tasks, get_task
from vitbench.run.task_definition import Metric

if TYPE_CHECKING:
    from vitbench.compare.numeric import KeyView

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
    """One task's part of the report (results.md and report.html), built by
    :func:`vitbench.compare.report.task_sections`.

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


def report_html(
    df: pd.DataFrame,
    out: Path,
    summary: str,
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
<p>{html.escape(summary)}</p>
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
