"""Where ``model.net.pretrained`` points, read as timm reads it: ``true`` (the tag's weights from the
Hugging Face hub or its cache, or timm's URL), a weights file (``.safetensors``; ``.pth``, ``.bin`` and
others through ``torch.load(weights_only=True)``), or a ``save_for_hf`` / hub-snapshot / vitbench-export
folder. Each is resolved to its tensors and to the ``timm.create_model`` arguments that load it, with
a message naming what is missing or unreadable and what to write instead."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm
from torch import Tensor

Pretrained = bool | str


@dataclass
class WeightsSource:
    """Where ``model.net.pretrained`` points: its ``tensors`` as timm reads them, and the
    ``timm.create_model`` arguments that load them (``model_name`` and the pretrained settings)."""

    what: str
    tensors: dict[str, Tensor]
    model_name: str
    create: dict[str, Any] = field(default_factory=dict)


def weights_source(timm_name: str, pretrained: Pretrained, key: str = "model.net") -> WeightsSource:
    """Resolve ``model.net.pretrained`` and read its tensors; ValueError naming what is missing or unreadable."""
    if pretrained is True:
        return hub_source(timm_name, key)
    path = Path(str(pretrained)).expanduser()
    if str(pretrained).lower() in ("true", "false", "yes", "no"):
        raise ValueError(f"{key}.pretrained={pretrained!r} is a string; write true or false without quotes.")
    if not path.exists():
        raise ValueError(
            f"{key}.pretrained={pretrained}: no such file or folder. Give a weights file (.safetensors, .pth, "
            ".bin), a folder written by timm's save_for_hf or vitbench-export, or true for timm's own weights."
        )
    if path.is_dir():
        return folder_source(timm_name, path, key)
    tensors = read_tensors(lambda: timm.models.load_state_dict(str(path)), f"{key}.pretrained={path}")
    cfg = timm.models.get_pretrained_cfg(timm_name)
    overlay: dict[str, Any] = {"file": str(path), "num_classes": head_rows(tensors, cfg)}
    first_conv = getattr(cfg, "first_conv", None) if cfg is not None else None
    weight = tensors.get(f"{first_conv}.weight") if isinstance(first_conv, str) else None
    # The file's input channels, which adapt_input_conv starts from (timm assumes the tag's, RGB).
    if weight is not None and weight.ndim == 4:
        overlay["input_size"] = (weight.shape[1], *cfg.input_size[1:])
    return WeightsSource(
        str(path), tensors, timm_name, {"pretrained": True, "pretrained_cfg_overlay": overlay}
    )


def folder_source(timm_name: str, folder: Path, key: str = "model.net") -> WeightsSource:
    """A ``save_for_hf`` folder or a hub snapshot: built as timm's ``local-dir:`` model, whose saved
    architecture arguments are defaults under the run's (classes, channels, size)."""
    from timm.models._hub import load_state_dict_from_path

    config = folder / "config.json"
    if not config.is_file():
        raise ValueError(
            f"{key}.pretrained={folder} is a folder without config.json; give the weights file in it "
            f"({key}.pretrained=<folder>/model.safetensors) or a folder written by save_for_hf or vitbench-export."
        )
    arch = json.loads(config.read_text()).get("architecture")
    if arch != timm_name.partition(".")[0]:
        raise ValueError(
            f"{key}.pretrained={folder} holds a {arch} (its config.json), not {key}.name={timm_name}; "
            f"set {key}.name={arch}."
        )
    tensors = read_tensors(lambda: load_state_dict_from_path(folder), f"{key}.pretrained={folder}")
    return WeightsSource(str(folder), tensors, f"local-dir:{folder}", {"pretrained": True})


def hub_source(timm_name: str, key: str = "model.net") -> WeightsSource:
    """The tag's own weights, read where timm reads them (the HF hub and its cache, or a URL)."""
    from huggingface_hub import constants
    from timm.models._builder import _resolve_pretrained_source
    from timm.models._hub import download_cached_file, get_cache_dir, load_state_dict_from_hf

    cfg = timm.models.get_pretrained_cfg(timm_name)
    load_from, location = _resolve_pretrained_source(cfg.to_dict()) if cfg is not None else ("", "")
    if load_from == "hf-hub":
        repo = location[0] if isinstance(location, tuple) else location
        where = (
            f"the Hugging Face cache {Path(constants.HF_HUB_CACHE) / ('models--' + repo.replace('/', '--'))}"
            + (" (HF_HUB_OFFLINE=1: the hub was not asked)" if constants.HF_HUB_OFFLINE else ", then the hub")
        )
        args = location if isinstance(location, tuple) else (location,)
        reader = lambda: load_state_dict_from_hf(*args)  # noqa: E731
        what = f"hf-hub:{repo}"
    elif load_from == "url":
        where = f"timm's download cache {get_cache_dir()}, then {location}"
        what = str(location)
        reader = lambda: timm.models.load_state_dict(download_cached_file(location))  # noqa: E731
    else:
        raise ValueError(
            f"{key}.pretrained=true: timm has no weights for {timm_name}; pick a tagged name "
            f"(timm.list_pretrained('{timm_name.partition('.')[0]}*')) or give a weights file: {key}.pretrained=<path>."
        )
    try:
        tensors = reader()
    except Exception as err:  # offline and not cached, a network error, a broken download
        raise ValueError(
            f"{key}.pretrained=true: timm could not get the weights of {timm_name} "
            f"({type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else 'no detail'}); it looked in "
            f'{where}. Fetch them once where there is network (python -c "import timm; '
            f"timm.create_model('{timm_name}', pretrained=True)\"), or give a file: {key}.pretrained=/path/to/model.safetensors."
        ) from None
    return WeightsSource(what, tensors, timm_name, {"pretrained": True})


def read_tensors(reader, key: str) -> dict[str, Tensor]:
    """The tensors ``reader`` returns, or ValueError saying the file cannot be read or holds none."""
    try:
        tensors = reader()
    except Exception as err:  # truncated, not a tensor file, pickled objects weights_only refuses
        raise ValueError(
            f"{key} cannot be read as a weights file ({type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else 'no detail'}); "
            "give a .safetensors file, a torch.save'd state dict, or a save_for_hf folder."
        ) from None
    if not isinstance(tensors, dict) or not any(isinstance(v, Tensor) for v in tensors.values()):
        raise ValueError(f"{key} holds no tensors; give a .safetensors file or a torch.save'd state dict.")
    return {k: v for k, v in tensors.items() if isinstance(v, Tensor)}


def head_rows(tensors: dict[str, Tensor], cfg: Any) -> int:
    """The number of classes of the file's classifier (timm keeps the head when the run has as many),
    or -1 when the file has none that the architecture names."""
    names = getattr(cfg, "classifier", None) if cfg is not None else None
    names = (names,) if isinstance(names, str) else tuple(names or ())
    rows = [tensors[f"{n}.weight"].shape[0] for n in names if f"{n}.weight" in tensors]
    return int(rows[0]) if rows else -1


def foreign_fix(source: WeightsSource, key: str = "model.net") -> str:
    """What to do about a file that does not fit."""
    if any(name.startswith("net.") for name in source.tensors):
        return "This is a vitbench checkpoint: start from it with init_from=<its run folder or file> instead."
    return f"Give weights of the architecture {key}.name names, or set {key}.name to the file's."
