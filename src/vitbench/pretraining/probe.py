"""vitbench-probe: k-NN and linear-probe accuracy of a run's frozen encoder, into its results.json.

    vitbench-probe outputs/2026-12-01/12-00-00_mae_s0_4242
    vitbench-probe multirun/generate/<time>/0_model=jit --block 3 4 --t 0.9 1.0
    vitbench-probe outputs/.../<time>_vit_s0_4242 --train-subset 10000

Reads the run's best checkpoint and the data it was trained on (the datamodule hyperparameters in
the checkpoint), probes it (:mod:`vitbench.pretraining.encoders` says which features), prints the
figures and writes ``knn_acc``, ``linear_acc`` and ``probe`` (how, on what, the grid) into the
run's results.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from vitbench.classification.classifier import pick_device, run_folder
from vitbench.data import ImageDataModule
from vitbench.pretraining.encoders import encoder_settings, load_run
from vitbench.pretraining.frozen_features import probe_data, probe_encoders
from vitbench.run.checkpoints import run_command_parser
from vitbench.run.files import write_json_atomic


def _parser() -> argparse.ArgumentParser:
    parser = run_command_parser(
        "vitbench-probe",
        "k-NN (k=20, cosine, weighted) and linear-probe accuracy of a run's frozen encoder "
        "(MAE, a classifier's pre-logits, a denoiser's block at a noise level), written to its results.json.",
        argument="run",
    )
    parser.add_argument(
        "--block", type=int, nargs="+", metavar="B",
        help="denoisers: the features after B blocks (default: the middle block and the next)",
    )  # fmt: skip
    parser.add_argument(
        "--t", type=float, nargs="+", metavar="T",
        help="denoisers: noise levels, t = 1 the clean image (default: 0.9 0.95 1.0)",
    )  # fmt: skip
    parser.add_argument(
        "--train-subset",
        type=int,
        metavar="N",
        help="train the probes on the first N training images (default: all)",
    )
    parser.add_argument("--data-root", help="where the dataset is (default: the run's data.source.root)")
    parser.add_argument("--device", default="auto", help="auto (a GPU where there is one), cpu, cuda, ...")
    parser.add_argument(
        "--no-write", action="store_true", help="print the figures only; leave results.json alone"
    )
    return parser


def grid_lines(probe: dict) -> list[str]:
    """The grid of a denoiser's probe as text lines, the chosen setting marked."""
    if not probe.get("grid"):
        return []
    val = "val_linear_acc" in probe["grid"][0]
    lines = [f"{'block':>5} {'t':>5} {'val linear':>10} {'knn':>7} {'linear':>7}"]
    for row in probe["grid"]:
        chosen = " <- chosen" if (row["block"], row["t"]) == (probe["block"], probe["t"]) else ""
        val_text = f"{row['val_linear_acc']:.4f}" if val else "-"
        lines.append(
            f"{row['block']:>5} {row['t']:>5.2f} {val_text:>10} {row['knn_acc']:>7.4f} {row['linear_acc']:>7.4f}{chosen}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.train_subset is not None and args.train_subset < 1:
        parser.error(
            f"--train-subset {args.train_subset} must be >= 1 (a number of training images), or left out for all"
        )
    torch.set_float32_matmul_precision("high")
    try:
        module, checkpoint, data = load_run(args.run)
        settings = encoder_settings(module, args.block, args.t)
        storage = {"storage": "memory"} if "storage" in data else {}  # the probe reads whole splits
        datamodule = ImageDataModule.from_hparams(data, **storage, root=args.data_root)
        probe = probe_data(datamodule, args.train_subset)
        device = pick_device(args.device)
        module.to(device)
        print(
            f"checkpoint {checkpoint} ({type(module).__name__}, {data['source']['_target_']}): "
            f"{len(probe.train.labels)} training and {len(probe.test.labels)} test images, {len(settings)} setting(s)"
        )
        result = probe_encoders(settings, probe, device)
    except (ValueError, OSError) as err:  # ProbeError, CheckpointError, the readers' FileNotFoundError
        print(f"vitbench-probe: {err}", file=sys.stderr)
        return 2
    details = result["probe"]
    for line in grid_lines(details):
        print(line)
    chosen = ", ".join(f"{k} {details[k]}" for k in ("block", "t") if k in details)
    how = f" ({chosen}, chosen by {details['chosen_by']})" if chosen else ""
    print(f"features: {details['features']}{how}")
    print(f"knn_acc {result['knn_acc']:.4f}  linear_acc {result['linear_acc']:.4f}  ({details['seconds']} s)")
    write_record(args, checkpoint, result)
    return 0


def write_record(args: argparse.Namespace, checkpoint: Path, result: dict) -> None:
    """Add the probe's figures to the run's results.json (rewritten atomically), when there is one."""
    folder = run_folder(checkpoint)
    results = folder / "results.json" if folder else None
    if args.no_write or results is None or not results.is_file():
        why = "--no-write" if args.no_write else f"no results.json beside {checkpoint} (an unfinished run?)"
        print(f"results.json not written: {why}")
        return
    record = json.loads(results.read_text())
    probe = {**result["probe"], "checkpoint": str(checkpoint.resolve().relative_to(folder))}
    record.update(knn_acc=result["knn_acc"], linear_acc=result["linear_acc"], probe=probe)
    write_json_atomic(results, record)
    print(f"wrote knn_acc, linear_acc and probe into {results}")
