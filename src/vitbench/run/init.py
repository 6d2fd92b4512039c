"""``init_from``: start a run's network from an earlier vitbench run's weights.

It is not a resume (``ckpt_path`` is): only the network's tensors are copied, by name, from the
earlier run's best checkpoint (``net.*`` in its ``state_dict``); the optimizer, schedule, epoch
and metrics start fresh. The earlier run may have another number of classes (the head is left
new), another image size (a ViT's position table is resampled to the new grid with timm's
``resample_abs_pos_embed``), or be a pretraining run whose ``net`` is this run's encoder. A run
resumed with ``ckpt_path`` does not load ``init_from`` again over its checkpoint: it keeps the
record of how it started, saved in every checkpoint.

What was copied is the run's ``init`` record (log, W&B config, results.json)::

    {"source": ".../best-epoch003.ckpt", "from": "ImageClassifier", "loaded": 74,
     "resized": {"pos_embed": "1x17x128 -> 1x37x128"}, "new": ["head.weight", "head.bias"], "unused": [...]}
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from timm.layers import resample_abs_pos_embed
from torch import Tensor, nn

from vitbench.run.checkpoints import find_checkpoint, read_checkpoint
from vitbench.run.results import format_problem
from vitbench.run.task import TaskModule

log = logging.getLogger(__name__)

# A network that takes fewer of its tensors than this share from a file did not come from it.
MIN_LOADED_SHARE = 0.5


def shape_text(tensor: Tensor) -> str:
    return "x".join(map(str, tensor.shape)) or "scalar"


def start_network(module: TaskModule, init_from: str | None, resumed: dict[str, Any] | None) -> dict | None:
    """How ``module``'s network starts, as its ``init`` record (None: from its random initialisation).

    Args:
        module: The built task module; its constructor may already have loaded pretrained weights
            (``module.init_record``).
        init_from: A vitbench run folder (its best checkpoint) or a ``.ckpt`` file, or None.
        resumed: The checkpoint a resumed run continues from (``ckpt_path``), or None. Its network
            replaces whatever is loaded here, so ``init_from`` is not applied; the record is the one
            the checkpoint saved when the run started.

    Raises:
        ValueError: ``init_from`` is missing, unreadable, or holds another network; or it is combined
            with pretrained weights (both would set the network).
    """
    if resumed is not None:
        module.init_record = resumed.get("vitbench", {}).get("init", module.init_record)
        return module.init_record
    if init_from:
        if module.init_record is not None:
            raise ValueError(
                f"init_from={init_from} and model.net.pretrained={module.init_record['source']} both set the "
                "network's weights; keep one: drop model.net.pretrained (init_from's run already holds its "
                "fine-tuned weights) or drop init_from."
            )
        module.init_record = init_from_run(module, Path(str(init_from)).expanduser())
    if module.init_record is not None:
        log.info("init: %s", summary(module.init_record))
    return module.init_record


def init_from_run(module: TaskModule, source: Path) -> dict[str, Any]:
    """Copy the tensors of ``source``'s network that fit ``module.net`` into it; returns the record."""
    try:
        checkpoint = find_checkpoint(source)
        saved = read_checkpoint(checkpoint)
    except (FileNotFoundError, ValueError) as err:
        raise ValueError(
            f"init_from={source}: {err} Pass the folder of a finished vitbench run (outputs/<date>/<run>) or "
            "one of its checkpoints/*.ckpt."
        ) from None
    # A vitbench checkpoint of another format is refused; a Lightning one that is not vitbench's has no "vitbench".
    if "vitbench" in saved and (
        problem := format_problem(saved["vitbench"].get("format"), f"init_from={checkpoint}")
    ):
        raise ValueError(problem)
    tensors = {k.removeprefix("net."): v for k, v in saved["state_dict"].items() if k.startswith("net.")}
    origin = saved.get("vitbench", {}).get("module", "a module vitbench does not know")
    state, record = match_tensors(module.net, tensors)
    record = {"source": str(checkpoint), "from": origin, **record}
    check_fits(
        record,
        len(state),
        f"init_from={source}",
        f"{checkpoint} holds the network of a {origin}, which does not fit this run's {type(module).__name__}",
        "init_from takes a run of the same network (another dataset or number of classes, or a "
        "pretraining run whose encoder is this network); pass such a run, or drop init_from",
    )
    check_shapes(module.net, tensors, record, f"init_from={source}", origin)
    module.net.load_state_dict(state)
    return record


def check_shapes(
    net: nn.Module, tensors: dict[str, Tensor], record: dict[str, Any], key: str, origin: str
) -> None:
    """Raise ValueError naming the first tensor of the file whose name ``net`` has but whose shape
    differs (a position table resampled and the classifier excepted): an encoder of another width,
    depth of MLP or patch would otherwise start those layers at random while the rest loads."""
    heads = head_parameter_names(net)
    state = net.state_dict()
    for name in record["new"]:
        if name in tensors and name not in heads and name not in record["resized"]:
            raise ValueError(
                f"{key}: the {origin}'s tensor {name} is {shape_text(tensors[name])} but this run's is "
                f"{shape_text(state[name])}: its network is another shape. Build this run with the source "
                "run's architecture (the same model.* size keys: width or embed_dim, mlp_ratio, patch_size, "
                "in_chans), or drop init_from."
            )


def head_parameter_names(net: nn.Module) -> set[str]:
    """Names of the parameters of ``net``'s classifier(s), by timm's ``get_classifier()`` (DeiT's two
    heads); empty for a network without one."""
    get = getattr(net, "get_classifier", None)
    found = get() if callable(get) else ()
    heads = found if isinstance(found, tuple | list) else (found,)
    ids = {id(p) for head in heads if isinstance(head, nn.Module) for p in head.parameters()}
    return {name for name, p in net.named_parameters() if id(p) in ids}


def match_tensors(net: nn.Module, tensors: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The state dict ``net`` is to load (its own tensors where ``tensors`` has none that fit) and
    the record of the match: ``loaded`` (count), ``resized``, ``new``, ``unused``."""
    state = net.state_dict()
    loaded, resized, new = 0, {}, []
    for name, target in state.items():
        source = tensors.get(name)
        if source is not None and source.shape != target.shape and name.endswith("pos_embed"):
            source = resample_position_table(net, source, target)
            if source is not None:
                resized[name] = f"{shape_text(tensors[name])} -> {shape_text(target)}"
        if source is None or source.shape != target.shape:
            new.append(name)
            continue
        state[name] = source.to(dtype=target.dtype)
        loaded += 1
    used = set(state) - set(new)
    unused = [name for name in tensors if name not in used]
    return state, {"loaded": loaded, "resized": resized, "new": new, "unused": unused}


def resample_position_table(net: nn.Module, source: Tensor, target: Tensor) -> Tensor | None:
    """A ViT's absolute position table ``(1, prefix + h*w, D)`` resampled to ``target``'s grid
    (timm's ``resample_abs_pos_embed``, bicubic as timm's own checkpoint filter); None when the
    tables are not square grids of the same width."""
    prefix = 0 if getattr(net, "no_embed_class", False) else int(getattr(net, "num_prefix_tokens", 0))
    old, new = source.shape[1] - prefix, target.shape[1] - prefix
    if source.ndim != 3 or source.shape[2] != target.shape[2] or min(old, new) < 1:
        return None
    if math.isqrt(old) ** 2 != old or math.isqrt(new) ** 2 != new:
        return None
    grid = getattr(getattr(net, "patch_embed", None), "grid_size", None) or (math.isqrt(new),) * 2
    with torch.no_grad():
        return resample_abs_pos_embed(
            source.float(), new_size=list(grid), old_size=[math.isqrt(old)] * 2, num_prefix_tokens=prefix
        ).to(target.dtype)


def check_fits(record: dict[str, Any], total: int, key: str, what: str, fix: str) -> None:
    """Raise ValueError when fewer than half of the network's ``total`` tensors came from the file:
    a network that looks pretrained but is mostly random must never train silently."""
    taken = record["loaded"]
    if total and taken >= MIN_LOADED_SHARE * total:
        return
    raise ValueError(
        f"{key}: {what}: only {taken} of its {total} tensors match by name and shape. Not found or of "
        f"another shape: {first_names(record['new'])}; in the file but unused: {first_names(record['unused'])}. "
        f"{fix}."
    )


def first_names(names: list[str], n: int = 4) -> str:
    """The first ``n`` names and how many more there are."""
    more = f" (and {len(names) - n} more)" if len(names) > n else ""
    return (", ".join(names[:n]) or "none") + more


def summary(record: dict[str, Any]) -> str:
    """One log line: where the weights came from and what was loaded, resized and left new."""
    resized = ", ".join(f"{k} {v}" for k, v in record.get("resized", {}).items()) or "none"
    new = ", ".join(record.get("new", [])[:8]) or "none"
    return (
        f"{record.get('loaded')} tensors loaded from {record.get('source')}; resized: {resized}; "
        f"new: {new}{' ...' if len(record.get('new', [])) > 8 else ''}; "
        f"{len(record.get('unused', []))} in the file unused"
        + (f"; normalization: {record['normalization']}" if record.get("normalization") else "")
    )
