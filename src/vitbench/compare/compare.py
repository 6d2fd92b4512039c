"""vitbench-compare: compare the runs of one or more folders (or a W&B group) and write the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vitbench.compare.records import find_runs, load_records
from vitbench.compare.report import sections_markdown, task_sections, write_report
from vitbench.compare.table import failed_runs
from vitbench.compare.wandb_runs import find_wandb_runs
from vitbench.run.outpath import output_folder


def default_out(paths: list[Path]) -> Path:
    """The first path when it is a sweep folder (it holds multirun.yaml), else ./comparison."""
    if paths and (paths[0] / "multirun.yaml").is_file():
        return paths[0]
    return Path("comparison")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitbench-compare",
        description="Group runs by model and swept keys, aggregate seeds (mean ± std), write "
        "results.md, results.csv (results_denoising.csv for denoising runs), report.html and PNG plots, "
        "and print one table per task.",
    )
    parser.add_argument("paths", nargs="*", type=Path, help="run folders, sweep folders, or folders of them")
    parser.add_argument(
        "--out",
        type=Path,
        help="the folder that receives the report (default: the sweep folder, else ./comparison)",
    )
    parser.add_argument(
        "--metric", action="append", metavar="KEY",
        help="a results.json key to plot against each numeric key the sweep varied (repeatable; "
        "default test_acc for classification, fid for denoising)",
    )  # fmt: skip
    parser.add_argument(
        "--reference", metavar="MODEL",
        help="plot and tabulate each model's gap to this model's runs of the same seed (default: cnn, where present)",
    )  # fmt: skip
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read the runs from the W&B API instead")
    parser.add_argument("--group", help="the W&B group to read (with --wandb)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run vitbench-compare; 0 when a report was written (failed runs included), else non-zero."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.wandb and not args.group:
        parser.error("--wandb needs --group G: the W&B group of the runs to compare")
    if not args.paths and not args.wandb:
        parser.error("give at least one run or sweep folder, or --wandb ENTITY/PROJECT --group G")

    try:
        out = output_folder(
            args.out or default_out(args.paths),
            "vitbench-compare",
            "results.md, results.csv, report.html, plots",
        )
        records = find_runs(args.paths) if args.paths else []
        if args.wandb:
            records += find_wandb_runs(args.wandb, args.group)
    except (FileNotFoundError, ValueError) as err:
        print(f"vitbench-compare: {err}", file=sys.stderr)
        return 2
    if not records:
        where = " ".join(map(str, args.paths)) or f"W&B {args.wandb} group {args.group}"
        print(
            f"vitbench-compare: no run found in {where} (a run folder holds results.json or .hydra/)",
            file=sys.stderr,
        )
        return 1

    df = load_records(records)
    if args.reference and args.reference not in set(df["model"].dropna().astype(str)):
        print(f"vitbench-compare: --reference {args.reference}: no run of that model here", file=sys.stderr)
        return 2
    paths = write_report(df, out, metrics=args.metric, reference=args.reference)
    tables = sections_markdown(task_sections(df))  # one table per task, and its profile's
    print(tables)
    numeric = paths["results_md"].read_text().split(tables, 1)[-1].split("\n### ", 1)
    if len(numeric) > 1:  # the tables against each numeric swept key
        print("\n### " + numeric[1].split("\n## ", 1)[0].rstrip())
    failed = failed_runs(df)
    if len(failed):
        print(f"\n{len(failed)} failed or unfinished run(s):")
        for run in failed.itertuples():
            print(f"  {run.run} [{run.overrides}]: {run.reason}")
    print()
    for path in paths.values():
        print(f"wrote {path}")
    return 0
