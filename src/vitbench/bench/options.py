"""What each speed switch is worth: the default model against the same model with one switch
flipped, trained in bare-loop windows that alternate in time (so host drift cancels out).

    vitbench-bench model=vit bench.options=[fused_attn,fused_adamw,bf16,compile]

Each switch is the config key a user would set; :data:`SWITCHES` says which key and to what.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from vitbench.bench.timing import BareLoop, Windows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Switch:
    """A speed switch: the override that turns it on (or, where it is on by default, off)."""

    key: str
    value: Any
    applies: tuple[str, ...]  # model names it exists for


SWITCHES = {
    "fused_attn": Switch("model.fused_attn", "flip", ("vit", "deit", "swin")),
    "channels_last": Switch("model.channels_last", "flip", ("cnn", "efficientvit")),
    "fused_adamw": Switch("model.optimizer.fused", "flip", ("vit", "deit", "swin", "efficientvit", "cnn")),
    "foreach_adamw": Switch("model.optimizer", {"fused": None, "foreach": True}, ("vit", "deit", "swin", "efficientvit", "cnn")),
    "bf16": Switch("trainer.precision", "bf16-mixed", ("vit", "deit", "swin", "efficientvit", "cnn")),
    "compile": Switch("model.compile", True, ("vit", "deit", "swin", "efficientvit", "cnn")),
}  # fmt: skip


def check_switch_names(names) -> None:
    """Raise ValueError naming the first of `names` that is not a switch (before any timing)."""
    for name in names or []:
        if name not in SWITCHES:
            raise ValueError(f"bench.options: {name!r} is not one of {', '.join(SWITCHES)}.")


def switched(cfg: DictConfig, switch: Switch) -> tuple[DictConfig, str]:
    """A copy of `cfg` with `switch` applied, and the override it amounts to (``key=value``)."""
    other = cfg.copy()
    value = switch.value
    if value == "flip":
        current = OmegaConf.select(cfg, switch.key)
        value = not bool(current)
    if isinstance(value, dict):
        for k, v in value.items():
            OmegaConf.update(other, f"{switch.key}.{k}", v, force_add=True)
        shown = " ".join(f"{switch.key}.{k}={'null' if v is None else v}" for k, v in value.items())
    else:
        OmegaConf.update(other, switch.key, value, force_add=True)
        shown = f"{switch.key}={str(value).lower() if isinstance(value, bool) else value}"
    return other, shown


def measure_switches(
    cfg: DictConfig, build_model, x: torch.Tensor, y: torch.Tensor, windows: Windows, device: torch.device
) -> list[dict[str, Any]]:
    """For each name in ``cfg.bench.options`` that applies to this model: images/s of the bare loop
    with the default config and with the switch, window by window in turn; speed-up = their
    median ratio. ``build_model(cfg)`` builds a model from a config."""
    entries = []
    check_switch_names(cfg.bench.get("options"))
    for name in cfg.bench.get("options") or []:
        switch = SWITCHES[name]
        if cfg.model_name not in switch.applies:
            log.info("Switch %s does not apply to %s: skipped", name, cfg.model_name)
            continue
        other_cfg, override = switched(cfg, switch)
        loops = []
        for c in (cfg, other_cfg):
            torch.manual_seed(cfg.seed)
            model, _ = build_model(c)
            loop = BareLoop(model, x, y, windows, str(c.trainer.precision), copy=False)
            model.configure_model()  # compiles in place when model.compile is on
            loops.append(loop)
        log.info("Timing %s: default against %s", cfg.model_name, override)
        for loop in loops:
            loop(True, device)  # warm-up, compilation included
        for _ in range(windows.repeats):
            for loop in loops:
                loop(False, device)
        base, other = loops
        entries.append({
            "switch": name, "override": override,
            "default_images_per_s": statistics.median(base.rates),
            "switched_images_per_s": statistics.median(other.rates),
            "speedup": statistics.median(o / b for o, b in zip(other.rates, base.rates, strict=True)),
            "windows_images_per_s": {"default": base.rates, "switched": other.rates},
        })  # fmt: skip
    return entries


def format_switches(model: str, entries: list[dict[str, Any]]) -> str:
    lines = [f"{'model':<13} {'override':<48} {'default img/s':>13} {'switched img/s':>14} {'speed-up':>8}"]
    lines.append("-" * len(lines[0]))
    for e in entries:
        lines.append(
            f"{model:<13} {e['override']:<48} {e['default_images_per_s']:>13.0f} "
            f"{e['switched_images_per_s']:>14.0f} {e['speedup']:>8.2f}"
        )
    return "\n".join(lines)
