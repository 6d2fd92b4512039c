"""Write the comparison: results.md, results.csv, the PNG plots and a self-contained report.html.

One table per task present (classification, denoising, pretraining), each under its own heading,
followed by its profile's tables (`vitbench.compare.profile`) where the runs were profiled.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from vitbench.compare.numeric import KeyView, key_views
from vitbench.compare.plots import model_colors, plot_pngs, png_bytes
from vitbench.compare.profile import ProfileTable, derived_figures, profile_tables
from vitbench.compare.report_html import FAILED_TITLE, TITLE, TaskSection, report_html
from vitbench.compare.samples import picture_sets, sample_grids
from vitbench.compare.table import (
    STD_NOTE,
    aggregate,
    failed_runs,
    format_table,
    sampling_note,
    tasks_present,
    to_markdown,
)


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
    page = report_html(df, out, _summary(df), sections, views, failed, pngs, grids, pictures)
    paths["report_html"].write_text(page)
    return paths
