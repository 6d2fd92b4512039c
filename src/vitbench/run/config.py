"""Where the Hydra configs live, and the few resolvers they use."""

from __future__ import annotations

import math
import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf


def _find_config_dir() -> Path:
    # A checkout (editable install) keeps conf/ at the top of the repository, two levels above
    # src/vitbench; a wheel carries a copy inside the package.
    package = Path(__file__).resolve().parents[1]
    for candidate in (package.parents[1] / "conf", package / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"vitbench's configs are missing: neither {package.parents[1] / 'conf'} nor {package / 'conf'} holds "
        "train.yaml; reinstall vitbench"
    )


CONFIG_DIR = _find_config_dir()


def wandb_offline() -> bool:
    """W&B runs offline unless an API key is set: online without one fails at once (wandb 0.31)."""
    return not os.environ.get("WANDB_API_KEY")


def run_group(group: str | None) -> str:
    """The W&B group of a run: the configured one, else the sweep, else the experiment, else 'single'.

    Every job of one multirun shares its sweep folder, so grouping by it lets the dashboard
    compare exactly the runs of that sweep.
    """
    if group:
        return str(group)
    if not HydraConfig.initialized():
        return "single"
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        sweep_dir = Path(hydra_cfg.sweep.dir)
        return f"sweep-{sweep_dir.parent.name}_{sweep_dir.name}"
    experiment = hydra_cfg.runtime.choices.get("experiment")
    return str(experiment) if experiment else "single"


def threads_per_job() -> int | None:
    """Torch threads for one job: the cores shared among joblib's parallel jobs, else torch's default.

    Two jobs with two threads each on two cores run slower than one after the other.
    """
    if not HydraConfig.initialized():
        return None
    launcher = HydraConfig.get().launcher
    if "joblib" not in str(launcher.get("_target_", "")):
        return None
    cores = os.cpu_count() or 1
    n_jobs = launcher.get("n_jobs", -1)
    n_jobs = cores if n_jobs is None or n_jobs < 1 else n_jobs
    return max(1, cores // n_jobs)


def nearest_divisor(n: int, target: int) -> int:
    """The divisor of `n` closest to `target` (the smaller on a tie).

    Lets one model config fit every dataset: a ViT patch of ~7 px is 7 on 28 px images and 8 on 32 px.
    """
    return min((d for d in range(1, n + 1) if n % d == 0), key=lambda d: (abs(d - target), d))


def step_budget(n_images: int, batch_size: int, epochs: float, floor: int, cap: int, scale: float = 1) -> int:
    """Optimizer steps for `epochs` passes over `n_images` in batches of `batch_size`, kept within
    [floor, cap]: a budget that grows with the training set (a study where the data, not a fixed
    number of steps, decides), with a floor so that small sets still get enough updates. `scale`
    multiplies the result: the same runs with twice the budget say whether the budget binds."""
    if not 0 < floor <= cap:
        raise ValueError(f"vitbench.step_budget: floor {floor} and cap {cap} must satisfy 0 < floor <= cap.")
    if not scale > 0:
        raise ValueError(
            f"vitbench.step_budget: scale {scale} must be > 0 (1: the budget itself, 2: twice it)."
        )
    return int(round(scale * min(cap, max(floor, round(epochs * math.ceil(n_images / batch_size))))))


def part_of_budget(steps: int, fraction: float) -> int:
    """`fraction` of a run's `steps`, rounded: the step before which early stopping may not end it.

    Under a cosine schedule validation accuracy rises most in the budget's last part, where the learning
    rate is small; a plateau at the peak rate is no sign of convergence (the 55,000-label CNN of the
    pretraining study's budget check stopped at 1,900 of 4,000 steps, 2 points under its 2,000-step run)."""
    if not 0 <= fraction <= 1:
        raise ValueError(
            f"vitbench.part_of_budget: fraction {fraction} must lie in [0, 1] (0: early stopping from the "
            "first validation, 0.75: only in the budget's last quarter, 1: never before the budget's end)."
        )
    return int(round(steps * fraction))


def pretrained_stat(stat: str, timm_name: str | None, pretrained: bool | str, in_chans: int) -> list[float]:
    """``mean`` or ``std`` of the images a timm architecture[.tag]'s weights were trained on, one value
    per input channel: the tag's pretrained config, or the config.json of a weights folder
    (``model.net.pretrained=<folder>``). Other channel counts get the average (timm's rule for grey input).
    ``size=pretrained`` sets ``data.mean`` and ``data.std`` from it; a value on the command line wins."""
    import json

    from timm.models import get_pretrained_cfg

    if stat not in ("mean", "std"):
        raise ValueError(f"vitbench.pretrained_stat: {stat!r} is not mean or std.")
    if not timm_name:
        raise ValueError(
            "size=pretrained needs model.net.name (a timm architecture, e.g. vit_small_patch16_224); "
            "this model has none: use it with model=vit, deit, swin, efficientvit or cnn."
        )
    folder = Path(str(pretrained)).expanduser() if isinstance(pretrained, str) else None
    if folder is not None and (folder / "config.json").is_file():
        values = json.loads((folder / "config.json").read_text()).get("pretrained_cfg", {}).get(stat)
    else:
        cfg = get_pretrained_cfg(str(timm_name))
        values = getattr(cfg, stat, None) if cfg is not None else None
    values = [
        float(v) for v in (values or ((0.485, 0.456, 0.406) if stat == "mean" else (0.229, 0.224, 0.225)))
    ]
    if len(values) != in_chans:
        values = [sum(values) / len(values)] * in_chans
    return values


SETTINGS = ("name", "monitor", "monitor_mode", "best_metric")


def task_setting(target: str, name: str) -> str:
    """A setting of the task definition (:class:`vitbench.run.task_definition.Task`) of the
    LightningModule ``target`` names (``vitbench.denoising.DenoiserModule``): which metric its best
    checkpoint is chosen by (``monitor``, ``monitor_mode``), what a sweep optimizes (``best_metric``),
    its ``name``. The task says it, so the callbacks config and train.py need no per-task branch."""
    if name not in SETTINGS:
        raise ValueError(f"vitbench.task: unknown setting {name!r}; one of {', '.join(SETTINGS)}.")
    from hydra.utils import get_class

    task = getattr(get_class(target), "task", None)
    if task is None or not hasattr(task, name):
        raise ValueError(
            f"vitbench.task: {target} has no task definition (a vitbench TaskModule's `task`); "
            "model._target_ must name a vitbench LightningModule, e.g. vitbench.classification.ImageClassifier."
        )
    return str(getattr(task, name))


def register_resolvers() -> None:
    """Register vitbench's OmegaConf resolvers (idempotent)."""
    OmegaConf.register_new_resolver("vitbench.wandb_offline", wandb_offline, replace=True)
    OmegaConf.register_new_resolver("vitbench.group", run_group, replace=True)
    OmegaConf.register_new_resolver("vitbench.task", task_setting, replace=True)
    OmegaConf.register_new_resolver("vitbench.step_budget", step_budget, replace=True)
    OmegaConf.register_new_resolver("vitbench.part_of_budget", part_of_budget, replace=True)
    OmegaConf.register_new_resolver("vitbench.nearest_divisor", nearest_divisor, replace=True)
    OmegaConf.register_new_resolver("vitbench.pretrained_stat", pretrained_stat, replace=True)
    OmegaConf.register_new_resolver("vitbench.threads_per_job", threads_per_job, replace=True)
    OmegaConf.register_new_resolver("vitbench.pid", os.getpid, use_cache=True, replace=True)
