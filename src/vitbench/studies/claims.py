"""The claims study's results page, written from its run records (``make claims-study`` ends with it):

    python -m vitbench.studies.claims multirun/claims_study --out docs/results/claims-study.md

Reads every finished run below the study folder (``recipe/<row>/``: question 1, and 3 at seed 0;
``labels/<row>/``: question 2; ``size/<row>/``: question 4, with labels/vit's CPU-width runs), and
writes the page, its plots and ``runs.csv`` (a line a run: its command, steps, wall and profile time)
into ``<out without .md>/``. Every number and every sentence of the reading comes from the records;
a partial study gives a partial page.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from vitbench.run.machine import cpu_line
from vitbench.studies.cells import read_study
from vitbench.studies.claims_plots import deployment_plots, locality_plots, robustness_plots, size_plots
from vitbench.studies.claims_size import size_cells, size_section
from vitbench.studies.claims_tables import (
    Section,
    deployment_section,
    locality_section,
    markdown,
    robustness_section,
)
from vitbench.studies.robustness import add_corruption_figures

DEPLOYMENT_ROWS = ("cnn", "vit", "deit", "swin", "efficientvit")
RUN_COLUMNS = ("question", "row", "model", "seed", "labels", "width", "params", "gflops", "steps", "batch",
               "train_tflop", "wall_time_min", "profile_s", "parts", "test_acc", "command", "folder")  # fmt: skip
# What make claims-study runs for each question (its Makefile block); each run's own command is in runs.csv.
COMMANDS = {
    "recipe": "vitbench-train -m experiment=claims_recipe model=ROW seed=S ckpt_path=last hydra.sweep.dir=STUDY/recipe/ROW hydra.sweep.subdir=sS\n"
    "vitbench-evaluate STUDY/recipe --parts calibration corruptions occlusion adversarial",
    "labels": "vitbench-train -m experiment=claims_labels model=vit data.train_subset=N seed=S ckpt_path=last "
    "hydra.sweep.dir=STUDY/labels/vit hydra.sweep.subdir=nN-sS   # and cnn, vit_mae (init_from=MAE)\n"
    "vitbench-evaluate STUDY/labels --parts locality\n"
    "vitbench-evaluate --cka STUDY/labels/vit/nN-sS STUDY/labels/cnn/nN-sS",
    "deployment": "vitbench-evaluate STUDY/recipe/ROW/s0 --parts latency deployment",
    "size": "vitbench-train -m experiment=claims_labels model=vit model.net.embed_dim=64|256 data.train_subset=N seed=S "
    "ckpt_path=last hydra.sweep.dir=STUDY/size/vit_wW hydra.sweep.subdir=nN-sS\n"
    "vitbench-train -m experiment=claims_labels model=cnn 'model.net.channels=[CHANNELS]' data.train_subset=N seed=S "
    "ckpt_path=last hydra.sweep.dir=STUDY/size/cnn_wW hydra.sweep.subdir=nN-sS",
}


def cnn_channels(runs: pd.DataFrame) -> str:
    """The size question's CNN channels per row, as its runs were given them (the Makefile's
    CLAIMS_CNN_WIDTHS): one `# row: [channels]` line each, for the command block."""
    cnn = runs[(runs["question"] == "size") & (runs["model"] == "cnn")] if not runs.empty else runs
    found = {}
    for _, run in cnn.sort_values("width").iterrows():
        for item in str(run["command"]).split():
            if item.strip("'").startswith("model.net.channels="):
                found.setdefault(str(run["row"]), item.strip("'").partition("=")[2])
    return "".join(f"\n# {row}: CHANNELS = {channels}" for row, channels in found.items())


def cka_matrices(runs: pd.DataFrame, assets: Path) -> tuple[str, list[str]]:
    """The CKA matrices `vitbench-evaluate --cka VIT CNN` wrote into the ViT runs of labels/
    (``pictures/cka_<CNN run>.json``: rows, columns, cka), mean over seeds per label count, as tables;
    the first seed's heatmaps copied beside the page."""
    found: dict[int, list[dict]] = {}
    pictures = []
    vit = runs[(runs["question"] == "labels") & (runs["row"] == "vit")]
    for _, run in vit.sort_values(["labels", "seed"]).iterrows():
        for file in sorted((Path(run["folder"]) / "pictures").glob("cka_*.json")):
            found.setdefault(int(run["labels"]), []).append(json.loads(file.read_text()))
            png = file.with_suffix(".png")
            if png.is_file() and run["seed"] == vit["seed"].min():
                name = f"cka_{int(run['labels'])}.png"
                shutil.copyfile(png, assets / name)
                pictures.append(name)
    tables = []
    for labels, records in sorted(found.items()):
        mean = np.mean(
            [np.asarray(r["cka"], dtype=float) for r in records], axis=0
        )  # (ViT stages, CNN stages)
        rows = [
            [f"ViT {name}", *(f"{v:.2f}" for v in row)]
            for name, row in zip(records[0]["rows"], mean, strict=True)
        ]
        header = ["linear CKA", *(f"CNN {name}" for name in records[0]["columns"])]
        tables.append(
            f"Linear CKA at {labels:,} labels, mean over {len(records)} seed(s):\n\n{markdown(header, rows)}"
        )
    return "\n\n".join(tables), pictures


def section(title: str, command: str, part: Section, pictures: list[str], assets: str) -> str:
    body = [f"## {title}", "", "```bash", command, "```", ""]
    body += [*(t + "\n" for t in part.tables), part.reading, ""]
    body += [f"![{p}]({assets}/{p})" for p in pictures]
    return "\n".join(body) + "\n"


def cost_table(runs: pd.DataFrame) -> str:
    rows = []
    for question, group in runs.groupby("question", sort=False):
        rows.append([str(question), str(len(group)), f"{group['wall_time_min'].sum():.1f}",
                     f"{group['profile_s'].sum() / 60:.1f}", f"{group['steps'].sum():,.0f}"])  # fmt: skip
    return markdown(["folder", "runs", "training wall time (min)", "profile time (min)", "steps"], rows)


def progress(finished: int, planned: int | None) -> str:
    """Whether the page is the whole study: how many of its planned training runs have finished."""
    if planned is None:
        return ""
    if finished >= planned:
        return f"**All {planned} planned training runs have finished.**"
    return (
        f"**Partial: {finished} of the {planned} planned training runs have finished** (the seeds column "
        "of each table says which cells have how many); `make claims-study` trains the rest and writes "
        "this page again."
    )


def wall_time_spread(runs: pd.DataFrame) -> str:
    """A sentence when the same cell (question, row, label count, width) took very different wall times
    over its seeds: the runs shared the machine at times, and their steps are the comparable cost."""
    cells = runs.groupby(["question", "row", "labels", "width"], dropna=False)["wall_time_min"]
    ratio = (cells.max() / cells.min()).dropna()
    if ratio.empty or ratio.max() < 1.5:
        return ""
    question, row, labels, _ = ratio.idxmax()
    where = f"{question}/{row}" + (f" at {int(labels):,} labels" if pd.notna(labels) else "")
    return (
        f"The same cell's wall time differs up to {ratio.max():.1f}x between its seeds ({where}): runs that "
        "shared the machine with other work took longer, so wall times are upper bounds and steps the "
        "comparable cost."
    )


def write_page(study: Path, out: Path, samples: int = 1000, planned: int | None = None) -> Path:
    """Write `out` (markdown) and `out`'s folder of plots and runs.csv from the runs below `study`."""
    assets = out.with_suffix("")
    assets.mkdir(parents=True, exist_ok=True)
    runs = read_study(study)
    recipe = add_corruption_figures(runs[runs["question"] == "recipe"]) if not runs.empty else runs
    labels = runs[runs["question"] == "labels"]
    deploy = (
        recipe[(recipe["seed"] == 0) & recipe["row"].isin(DEPLOYMENT_ROWS)] if not recipe.empty else recipe
    )
    size, fits = size_section(runs, samples) if not runs.empty else (Section([], "No run yet."), [])
    columns = [c for c in RUN_COLUMNS if c in runs]
    runs.sort_values(["question", "row", "labels", "width", "seed"], na_position="first")[columns].to_csv(
        assets / "runs.csv", index=False
    )
    cka, cka_pictures = cka_matrices(labels, assets) if not labels.empty else ("", [])
    locality = locality_section(labels)
    locality = Section(locality.tables + ([cka] if cka else []), locality.reading)
    rel = assets.name
    finished = (
        pd.to_datetime(runs["finished"], unit="s") if not runs.empty else pd.Series(dtype="datetime64[ns]")
    )
    header = [
        "# The seed's remaining claims, measured (`make claims-study`)",
        "",
        f"Written {datetime.date.today()} by `python -m vitbench.studies.claims {study} --out {out}` from "
        f"{len(runs)} finished runs" + (f" (finished {finished.min():%Y-%m-%d %H:%M} to {finished.max():%Y-%m-%d %H:%M})" if len(runs) else "")
        + f", on {cpu_line()}. Every run's command, steps, wall time and profile time: [`runs.csv`]({rel}/runs.csv). "
        "Means ± sample std over seeds; differences are paired by seed (and label count).",
        "",
        progress(len(runs), planned),
        "",
        "**Budget.** About four hours of this 2-core machine for the whole study, planned from run times measured "
        "here on the idle machine (the Makefile's `claims-study` block gives each cell's): question 1 about 85 "
        "min (18 runs, their profile, MAE's pretraining once), question 2 about 60, question 3 about 5, question "
        "4 about 95 (its widest ViT, 0.11 forward GFLOPs, is most of it). To fit, question 1 trains at `make "
        "compare`'s length (2 epochs of batch 128, 858 steps) instead of the 4-epoch CPU default (+30 min); "
        "questions 2 and 4 take the pretraining study's step budget (1,000 steps up to 7,400 labels, 2,000 at "
        "55,000, early stopping in its last quarter), and question 4's CPU-width ViT is question 2's run. The "
        "seeds are the issue's (3, 2, 2). What the budget bounds is the steps: every figure is at these "
        "budgets, not at convergence (twice the pretraining study's steps lifted its ViT by 2 to 3 points and "
        "its CNN by at most 1.3). What the runs below cost, from their records:",
        "",
        cost_table(runs) if not runs.empty else "",
        "",
        wall_time_spread(runs) if not runs.empty else "",
        "",
    ]  # fmt: skip
    parts = [
        section("1. Robustness and calibration at one recipe", COMMANDS["recipe"], robustness_section(recipe),
                robustness_plots(recipe, assets) if not recipe.empty else [], rel),
        section("2. Locality against data", COMMANDS["labels"], locality,
                (locality_plots(labels, assets) if not labels.empty else []) + cka_pictures, rel),
        section("3. Deployment: batch-1 latency against FLOPs and accuracy (seed 0)", COMMANDS["deployment"],
                deployment_section(deploy), deployment_plots(deploy, assets) if not deploy.empty else [], rel),
        section("4. Size: error against parameters and training FLOPs", COMMANDS["size"] + cnn_channels(runs), size,
                size_plots(size_cells(runs), fits, assets) if not runs.empty else [], rel),
    ]  # fmt: skip
    text = "\n".join(header) + "\n" + "\n".join(parts)
    out.write_text(text.replace("STUDY", str(study)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vitbench.studies.claims", description=__doc__.splitlines()[0]
    )
    parser.add_argument("study", type=Path, help="the study folder (make claims-study's CSTUDY)")
    parser.add_argument(
        "--out", type=Path, default=Path("docs/results/claims-study.md"), help="the page to write"
    )
    parser.add_argument("--samples", type=int, default=1000, help="bootstrap samples of each fit")
    parser.add_argument(
        "--planned", type=int, help="the training runs the study plans (make claims-study passes them)"
    )
    args = parser.parse_args(argv)
    if not args.study.is_dir():
        parser.error(f"{args.study} is not a folder: run make claims-study first")
    print(f"wrote {write_page(args.study, args.out, args.samples, args.planned)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
