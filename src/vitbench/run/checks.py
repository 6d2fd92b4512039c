"""Values checked where they enter, before anything is built: each error names the key, why the value
is bad and what to write instead."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

# The configs have no schema, so Hydra accepts `trainer.max_epochs=abc`; these keys are checked
# before anything is built, so the mistake is named instead of failing deep inside Lightning.
NUMBER_KEYS = {
    "seed": int, "trainer.max_epochs": int, "data.batch_size": int, "data.num_workers": int,
    "data.val_size": int, "data.train_subset": int, "model.optimizer.lr": float,
    "model.optimizer.weight_decay": float, "model.label_smoothing": float, "model.net.drop_path_rate": float,
    "model.drop_path_rate": float, "model.layer_decay": float,
}  # fmt: skip


def check_numbers(cfg: DictConfig) -> None:
    """Raise ValueError naming the first key of NUMBER_KEYS whose value is not a number of its kind."""
    for key, kind in NUMBER_KEYS.items():
        value = OmegaConf.select(cfg, key, default=None)
        ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool))
        if ok and kind is int and value is not None:
            ok = isinstance(value, int)
        if not ok:
            example = "10" if kind is int else "1e-3"
            raise ValueError(
                f"{key}={value!r} is not {'an integer' if kind is int else 'a number'}; write e.g. {key}={example}."
            )


def check_accelerator(trainer: DictConfig) -> None:
    """Raise ValueError when the trainer asks for a GPU that PyTorch cannot see (Lightning's own
    message, "No supported gpu backend found!", says neither why nor what to run instead)."""
    accelerator = str(trainer.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"trainer.accelerator={accelerator} (trainer=gpu), but PyTorch sees no GPU on this machine "
            f"(torch {torch.__version__}, CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}). "
            "Run on the CPU with trainer=default (auto: the GPU where there is one) or trainer=cpu."
        )


def check_patch_size(img_size: int, patch_size: int, key: str = "model") -> None:
    """Raise ValueError unless ``patch_size`` tiles an ``img_size`` square image exactly; ``key`` is
    where ``patch_size`` lives (``model``, a classifier's ``model.net``)."""
    if patch_size < 1 or img_size % patch_size:
        valid = ", ".join(str(p) for p in range(1, img_size) if img_size % p == 0)
        raise ValueError(
            f"{key}.patch_size={patch_size} does not divide data.img_size={img_size}; use one of {valid}."
        )


def check_num_heads(num_heads: int, width: int, width_key: str = "embed_dim", key: str = "model") -> None:
    """Raise ValueError unless ``num_heads`` divides the token ``width``, suggesting heads that do;
    ``key`` is where the keys live (``model``, a classifier's ``model.net``)."""
    if num_heads >= 1 and width % num_heads == 0:
        return
    divisors = [d for d in range(1, min(width, 64) + 1) if width % d == 0]
    near = sorted(divisors, key=lambda d: (abs(d - num_heads), d))[:4]
    raise ValueError(
        f"{key}.{width_key}={width} is not divisible by {key}.num_heads={num_heads}; choose num_heads among "
        f"the divisors of {width} (e.g. {', '.join(map(str, sorted(near)))}), or set {key}.{width_key} to a "
        f"multiple of {num_heads} (e.g. {max(num_heads, (width // max(num_heads, 1)) * num_heads)})."
    )


def check_rate(key: str, value: float, usual: str) -> None:
    """Raise ValueError unless ``value`` (a drop or drop-path probability) lies in [0, 1): at 1 every
    sample would be dropped, and torch only says so inside the first training step."""
    if not 0.0 <= value < 1.0:
        raise ValueError(
            f"{key}={value} must lie in [0, 1): it is a probability of dropping; {usual} is usual."
        )


def check_moved_keys(overrides: Sequence[str], moved: Mapping[str, str], config_dir: Path) -> None:
    """Raise ValueError for a command-line override of a key that has moved (``model.patch_size=4``,
    now ``model.net.patch_size=4``), naming its new place. Run before Hydra composes, which would
    only say that the key is not in the config.

    A key is moved for the models chosen (``model=``, one per sweep value; else the experiment's;
    else ``vit``) whose own config does not have it: ``model=jit model.patch_size=4`` stays valid.

    Args:
        overrides: The command line's arguments (``sys.argv[1:]``).
        moved: Old key -> new key (``{"model.patch_size": "model.net.patch_size", ...}``).
        config_dir: The config folder, to read the models' own keys and the experiments' models.
    """
    pairs = [a.lstrip("+~").split("=", 1) for a in overrides if "=" in a and not a.startswith("-")]
    values = {key: value for key, value in pairs}
    models = _chosen_models(values, config_dir)
    for key, value in pairs:
        if key not in moved:
            continue
        name = key.removeprefix("model.")
        # A nested key (model.optimizer.layer_decay) is nowhere any more; a top-level one may be another model's.
        if "." in name or all(name not in _model_keys(m, config_dir) for m in models):
            raise ValueError(
                f"{key} has moved: write {moved[key]}={value} (vitbench 0.2.0 put the network's keys under "
                "model.net and the dataset's under data.source; CHANGELOG.md lists every move)."
            )


def _chosen_models(values: Mapping[str, str], config_dir: Path) -> list[str]:
    """The model configs a command line chooses: ``model=a,b`` (a sweep), else its experiment's."""
    choice = values.get("model")
    if choice is None and values.get("experiment"):
        experiment = config_dir / "experiment" / f"{values['experiment']}.yaml"
        defaults = OmegaConf.load(experiment).get("defaults", []) if experiment.is_file() else []
        for entry in defaults:
            if isinstance(entry, Mapping) and "override /model" in entry:
                choice = str(entry["override /model"])
    choice = (choice or "vit").removeprefix("choice(").removesuffix(")")
    return [m.strip() for m in choice.split(",") if m.strip()]


def _model_keys(model: str, config_dir: Path) -> set[str]:
    """The top-level keys of ``conf/model/<model>.yaml`` and of the model configs it builds on."""
    path = config_dir / "model" / f"{model}.yaml"
    if not path.is_file():
        return set()
    config = OmegaConf.load(path)
    keys = {str(k) for k in config if k != "defaults"}
    for entry in config.get("defaults", []):
        if isinstance(entry, Mapping):
            keys |= {str(k).split(":")[0].removeprefix("override ").strip() for k in entry}
        elif entry != "_self_":
            keys |= _model_keys(str(entry), config_dir)
    return keys
