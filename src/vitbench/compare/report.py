"""Write the comparison: results.md, results.csv, the PNG plots and a self-contained report.html."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from vitbench.compare.plots import plot_pngs
from vitbench.compare.table import STD_NOTE, aggregate, failed_runs, format_table, to_markdown

TITLE = "vitbench comparison"
FAILED_TITLE = "Failed or unfinished runs"
# Inline style only: the report opens offline and carries no URL at all.
CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f3f3f3; }
img { max-width: 48em; display: block; margin: 1em 0; }
"""


def _summary(df: pd.DataFrame) -> str:
    finished = int((df["status"] == "finished").sum())
    return (
        f"{finished} finished run(s), {len(df) - finished} failed or unfinished; test accuracy: {STD_NOTE}."
    )


def _markdown(df: pd.DataFrame, shown: pd.DataFrame, failed: pd.DataFrame) -> str:
    parts = [f"# {TITLE}", _summary(df), to_markdown(shown), f"## {FAILED_TITLE}"]
    parts.append(to_markdown(failed) if len(failed) else "None.")
    return "\n\n".join(parts) + "\n"


def _html(df: pd.DataFrame, shown: pd.DataFrame, failed: pd.DataFrame, pngs: dict[str, bytes]) -> str:
    images = "\n".join(
        f'<h3>{html.escape(name)}</h3>\n<img alt="{html.escape(name)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
        for name, png in pngs.items()
    )
    failed_html = failed.to_html(index=False, border=0) if len(failed) else "<p>None.</p>"
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{TITLE}</title><style>{CSS}</style></head>
<body>
<h1>{TITLE}</h1>
<p>{html.escape(_summary(df))}</p>
{shown.to_html(index=False, border=0)}
<h2>{FAILED_TITLE}</h2>
{failed_html}
<h2>Plots</h2>
{images}
</body>
</html>
"""


def write_report(df: pd.DataFrame, out_dir: str | Path, by: Sequence[str] | None = None) -> dict[str, Path]:
    """Write the comparison of the runs in `df` (from `load_records`) into `out_dir`.

    Args:
        df: one row per run, failed runs included (they are listed, not aggregated).
        out_dir: created if missing; existing report files are replaced.
        by: group keys, as for `aggregate`.

    Returns:
        The paths written, by name: results_md, results_csv, report_html and one per plot.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = aggregate(df, by)
    shown, failed = format_table(table), failed_runs(df)
    pngs = plot_pngs(df, by)

    paths = {"results_md": out / "results.md", "results_csv": out / "results.csv"}
    paths["results_md"].write_text(_markdown(df, shown, failed))
    table.to_csv(paths["results_csv"], index=False)  # n=1 leaves the std cells empty
    for name, png in pngs.items():
        paths[name] = out / f"{name}.png"
        paths[name].write_bytes(png)
    paths["report_html"] = out / "report.html"
    paths["report_html"].write_text(_html(df, shown, failed, pngs))
    return paths
