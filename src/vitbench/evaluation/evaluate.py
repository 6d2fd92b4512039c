"""vitbench-evaluate: profile trained classifiers beyond top-1, into their run records.

    vitbench-evaluate outputs/2026-12-03/12-00-00_vit_s0_4242
    vitbench-evaluate multirun/2026-12-03/12-00-00 --parts calibration
    vitbench-evaluate run/checkpoints/best-epoch003.ckpt
    vitbench-evaluate --cka outputs/<vit run> outputs/<cnn run>

Loads the classifier and the data it was trained on from the checkpoint (as vitbench-predict does;
a run folder's best checkpoint), runs each requested part (:data:`vitbench.evaluation.parts.PARTS`)
with the same seed every time, and writes its figures into the run's results.json, its pictures
into ``<run>/pictures/`` and both into the run's W&B run. A sweep folder profiles every finished
run below it; a run whose record already holds the requested parts is skipped, so an interrupted
profile completes on the next call.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from vitbench import classification
from vitbench.classification.classifier import Classifier, pick_device, run_folder
from vitbench.classification.classifier import load_classifier as load_checkpoint
from vitbench.classification.task import CLASSIFICATION
from vitbench.data.datamodule import ImageDataModule
from vitbench.evaluation.cka import compare_runs
from vitbench.evaluation.context import Context, EvaluateError
from vitbench.evaluation.parts import PARTS, check_parts
from vitbench.evaluation.record import RECORD, Log, done_parts, log_to_wandb, read_record, write_part
from vitbench.run.checkpoints import find_checkpoint, read_checkpoint
from vitbench.run.machine import cpu_name

DEFAULT_PARTS = ("calibration",)


def profile_after_training(folder: Path, parts: list[str], log: Log) -> None:
    """What ``vitbench-train evaluate=[...]`` runs once results.json is written: the parts on the
    run's best checkpoint, with vitbench-evaluate's defaults (seed 0, so the figures equal a later
    ``vitbench-evaluate`` call's), logged through the run's own W&B run."""
    args = argparse.Namespace(redo=False, seed=0, data_root=None, device="auto")
    evaluate_run(folder, check_parts(parts), args, log)


def describe_device(device: torch.device) -> str:
    """``cpu (AMD EPYC 7B13)`` or ``cuda (NVIDIA H200)``: the device type and its model."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({cpu_name()})"


def find_jobs(path: Path) -> tuple[list[Path], bool]:
    """The runs `path` names: itself (a .ckpt file or a run folder), or every run folder with a
    results.json below a sweep folder; and whether it is a sweep."""
    if not path.exists():
        raise EvaluateError(f"{path} does not exist: pass a run folder, a sweep folder or a .ckpt file.")
    if path.is_file() or any((path / name).exists() for name in ("checkpoints", ".hydra", RECORD)):
        return [path], False
    jobs = sorted(record.parent for record in path.rglob(RECORD))
    if not jobs:
        raise EvaluateError(
            f"{path} holds no run: no results.json below it and no checkpoints/ in it; pass a run or sweep folder."
        )
    return jobs, True


def why_skipped(record: dict, parts: list[str]) -> str | None:
    """Why a sweep's run is not profiled (not a classifier, unfinished, done), or None."""
    if record.get("task") != CLASSIFICATION.name:
        return f"a {record.get('task')} run, not a classifier: no part applies"
    if record.get(CLASSIFICATION.headline) is None:
        return f"unfinished ({CLASSIFICATION.unfinished_because})"
    return "already profiled" if set(parts) <= done_parts(record) else None


def load_classifier(path: Path) -> Classifier:
    """The classifier of a run folder (its best checkpoint) or a .ckpt file, in eval mode on the CPU,
    as vitbench-predict loads it; a checkpoint of another kind of model is refused with the parts
    that apply to it (none)."""
    checkpoint = find_checkpoint(path)
    name = read_checkpoint(checkpoint).get("vitbench", {}).get("module")
    module = getattr(classification, name, None) if name else None
    if name and not (isinstance(module, type) and issubclass(module, classification.ImageClassifier)):
        raise EvaluateError(
            f"{checkpoint} holds a {name}, not a classifier: no part of vitbench-evaluate applies to it "
            f"(its parts, {', '.join(PARTS)}, profile classifiers)."
        )
    return load_checkpoint(checkpoint)


def evaluate_run(path: Path, parts: list[str], args: argparse.Namespace, log: Log = log_to_wandb) -> None:
    """Profile one run: the parts its record lacks (all of them with ``--redo``); `log` sends the
    figures and pictures to the run's W&B run (resumed by id; a training run passes its live one)."""
    classifier = load_classifier(path)
    run = run_folder(classifier.checkpoint)
    folder = run or classifier.checkpoint.parent
    results = folder / RECORD if run else None
    record = read_record(results) if results else None
    todo = parts if args.redo else [p for p in parts if p not in done_parts(record)]
    print(f"{folder}: checkpoint {classifier.checkpoint.name} ({type(classifier.model).__name__})")
    if not todo:
        print(f"  already holds {', '.join(parts)}: nothing to do (--redo measures again)")
        return
    datamodule = ImageDataModule.from_hparams(classifier.data, root=args.data_root)
    datamodule.setup()
    context = Context(classifier, datamodule, pick_device(args.device), args.seed, folder)
    found: dict[str, float] = {}
    for part in todo:
        torch.manual_seed(args.seed)  # whatever a part draws from the global generator is the same each call
        drawn, start = set(context.pictures), time.perf_counter()
        figures = PARTS[part](context)
        seconds = round(time.perf_counter() - start, 2)
        pictures = [file for name, file in context.pictures.items() if name not in drawn]
        print(f"  {part} ({seconds} s): " + ", ".join(f"{k} {v:.4f}" for k, v in figures.items()))
        found.update(figures)
        if results is not None and record is not None:
            details = {
                "checkpoint": str(classifier.checkpoint.resolve().relative_to(folder.resolve())),
                "seed": args.seed,
                "seconds": seconds,
                # Where it ran: a latency is read with these (the latency parts set their own threads).
                "device": describe_device(context.device),
                "threads": torch.get_num_threads(),
                "pictures": sorted(str(p.relative_to(folder)) for p in pictures),
            }
            write_part(results, part, figures, details)
    if record is not None:
        print(f"  wrote {', '.join(todo)} into {results}")
    else:
        print(f"  results.json not written: none beside {classifier.checkpoint} (an unfinished run?)")
    print(f"  pictures: {', '.join(str(p) for p in context.pictures.values()) or 'none'}")
    print(f"  {log(folder, found, context.pictures)}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitbench-evaluate",
        description="Profile trained classifiers beyond top-1 (calibration, ...): figures into each run's "
        "results.json and W&B run, pictures into <run>/pictures/.",
    )
    parser.add_argument(
        "path", type=Path, nargs="?", help="a run folder, a sweep folder (every finished run) or a .ckpt file"
    )
    parser.add_argument(
        "--cka", nargs=2, type=Path, metavar=("RUN_A", "RUN_B"),
        help="linear CKA between every stage of two runs of the same data: a heatmap and a JSON matrix "
        "into RUN_A's pictures/, named after RUN_B (no PATH then)",
    )  # fmt: skip
    parser.add_argument(
        "--parts", nargs="+", default=list(DEFAULT_PARTS), metavar="PART",
        help=f"the parts to run (default: {' '.join(DEFAULT_PARTS)}); known: {', '.join(PARTS)}; all: every one",
    )  # fmt: skip
    parser.add_argument("--redo", action="store_true", help="measure parts the record already holds again")
    parser.add_argument("--seed", type=int, default=0, help="the seed of every part (default 0)")
    parser.add_argument("--data-root", help="where the dataset is (default: the run's data.source.root)")
    parser.add_argument("--device", default="auto", help="auto (a GPU where there is one), cpu, cuda, ...")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    torch.set_float32_matmul_precision("high")  # as vitbench-train tests with (TF32 matmuls on a GPU)
    try:
        if args.cka and args.path is not None:
            raise EvaluateError(f"--cka takes its two runs alone: drop {args.path}.")
        if args.cka:
            run_a, run_b = (load_classifier(path) for path in args.cka)
            print(compare_runs(run_a, run_b, args.seed, pick_device(args.device), args.data_root))
            return 0
        if args.path is None:
            raise EvaluateError("give a run folder, a sweep folder or a .ckpt file (or --cka RUN_A RUN_B).")
        parts = check_parts(args.parts)
        jobs, sweep = find_jobs(args.path)
        if not sweep:
            evaluate_run(jobs[0], parts, args)
            return 0
    except (ValueError, OSError) as err:  # EvaluateError, ClassifierError, CheckpointError, FileNotFoundError
        print(f"vitbench-evaluate: {err}", file=sys.stderr)
        return 2
    failed = 0
    for job in jobs:
        try:
            if why := why_skipped(read_record(job / RECORD), parts):
                print(f"{job}: skipped, {why}")
                continue
            evaluate_run(job, parts, args)
        except (ValueError, OSError) as err:  # one broken run does not stop the sweep's others
            print(f"vitbench-evaluate: {job}: {err}", file=sys.stderr)
            failed += 1
    return 2 if failed else 0
