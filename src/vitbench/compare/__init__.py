"""vitbench.compare: read the records of training runs, aggregate them over seeds, write the report.

vitbench-compare multirun/2024-05-01/12-00-00
vitbench-compare outputs/2024-05-01/*_vit_s* outputs/2024-05-01/*_deit_s* --out comparison
vitbench-compare --wandb my-team/vitbench --group sweep-42
"""

from vitbench.compare.compare import main
from vitbench.compare.plots import plot_pngs
from vitbench.compare.records import RunRecord, find_runs, load_records
from vitbench.compare.report import task_sections, write_report
from vitbench.compare.samples import sample_grids
from vitbench.compare.table import (
    aggregate,
    default_keys,
    failed_runs,
    format_table,
    sampling_note,
    swept_keys,
    tables_by_task,
    to_markdown,
)
from vitbench.compare.wandb_runs import find_wandb_runs

__all__ = [
    "RunRecord",
    "aggregate",
    "default_keys",
    "failed_runs",
    "find_runs",
    "find_wandb_runs",
    "format_table",
    "load_records",
    "main",
    "plot_pngs",
    "sample_grids",
    "sampling_note",
    "swept_keys",
    "tables_by_task",
    "task_sections",
    "to_markdown",
    "write_report",
]
