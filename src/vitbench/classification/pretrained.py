"""timm's own architectures for the classifier variants (``model.net.name``, through :func:`timm_network`) and their pretrained
weights (``model.net.pretrained``), loaded through timm itself.

``model.net.pretrained`` is ``false`` (timm's random initialisation), ``true`` (the tag's weights where timm
gets them: the Hugging Face hub, or its local cache with ``HF_HUB_OFFLINE=1``), the path of a weights
file (``.safetensors``; ``.pth``, ``.bin`` and others through ``torch.load(weights_only=True)``), or a
folder written by ``timm.models.save_for_hf`` or downloaded from the hub (``config.json`` + weights).
Every form goes through timm's ``load_pretrained``, so its adaptations apply: the architecture's
checkpoint filter (a ViT's position table resampled to the run's ``img_size`` and its patch
embedding to another patch; Swin's relative-position tables to another window), ``adapt_input_conv``
for another number of input channels (grey = the sum of the RGB kernels) and a new head when the
number of classes differs.

What was loaded is measured, not assumed: the network is built twice from one random seed, without
and with the weights, and each tensor is compared with the file's and with its random start. The
``init`` record lists what was loaded, resized (old shape -> new), left new and not used; a file of
which fewer than half of the network's tensors came is refused (:func:`vitbench.run.init.check_fits`).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence
from typing import Any

import timm
import torch
from torch import Tensor, nn

from vitbench.classification.weights import Pretrained, foreign_fix, weights_source
from vitbench.run.init import check_fits, shape_text

log = logging.getLogger(__name__)

NET = "model.net"  # where the network's keys live, for the messages


def check_timm_name(name: str, key: str = "model.net.name") -> None:
    """Raise ValueError unless ``name`` is a timm architecture, optionally with a pretrained tag."""
    arch, _, tag = str(name).partition(".")
    if not timm.is_model(arch):
        known = timm.list_models()
        close = difflib.get_close_matches(arch, known, n=6, cutoff=0.6)
        close = close or timm.list_models(f"*{arch.split('_')[0]}*")[:6]
        raise ValueError(
            f"{key}={name!r} is not a timm architecture"
            + (f"; close names: {', '.join(close)}" if close else "")
            + f". List them with python -c \"import timm; print(timm.list_models('*{arch.split('_')[0]}*'))\"."
        )
    if tag and name not in timm.list_pretrained(f"{arch}.*"):
        tags = [n.partition(".")[2] for n in timm.list_pretrained(f"{arch}.*")]
        raise ValueError(
            f"{key}={name!r}: timm has no weights tagged {tag!r} for {arch}; its tags: {', '.join(tags) or 'none'} "
            f"(or write {arch} alone for its default)."
        )


def timm_network(
    name: str,
    num_classes: int,
    in_chans: int,
    pretrained: Pretrained = False,
    args: dict[str, Any] | None = None,
    data_mean: Sequence[float] | None = None,
    data_std: Sequence[float] | None = None,
    **run_args: Any,
) -> nn.Module:
    """timm's own architecture ``name`` at this run's classes and channels, with ``pretrained``
    weights (``size=pretrained`` puts it in ``model.net``; ``model.net.name``).

    What was loaded (:func:`build_timm_net`'s record) is left on the network as ``init_record``; the
    classifier takes it from there into results.json (``init``).

    Args:
        name: A timm architecture, optionally with its pretrained tag (``vit_small_patch16_224.augreg_in1k``).
        num_classes, in_chans: The data's.
        pretrained: See the module docstring.
        args: More keyword arguments of the architecture (``{"depth": 4}``): they override timm's.
        data_mean, data_std: The run's normalization, to record whether it is the weights' own.
        run_args: What the run sets where the architecture takes it (``img_size``, ``drop_path_rate``,
            ``drop_rate``, ``global_pool``): each variant's ``conf/model_size/<model>_pretrained.yaml``.
    """
    net, record = build_timm_net(
        name,
        pretrained,
        args,
        (data_mean, data_std),
        NET,
        num_classes=num_classes,
        in_chans=in_chans,
        **run_args,
    )
    net.init_record = record
    return net


def build_timm_net(
    timm_name: str,
    pretrained: Pretrained,
    timm_args: dict[str, Any] | None,
    data_stats: tuple[Sequence[float] | None, Sequence[float] | None] = (None, None),
    key: str = NET,
    **kwargs: Any,
) -> tuple[nn.Module, dict[str, Any] | None]:
    """timm's architecture ``timm_name`` for this run, with ``pretrained`` weights; and the ``init``
    record (None without weights).

    Args:
        timm_name: A timm architecture, optionally with its pretrained tag.
        pretrained: See the module docstring.
        timm_args: More keyword arguments of the architecture: they override timm's.
        data_stats: The run's ``(data.mean, data.std)``, to log whether they are the weights' own.
        key: Where the settings live, for the messages (``model.net``; a DeiT teacher's: ``model.teacher``).
        kwargs: The run's ``num_classes``, ``in_chans`` and, where the architecture takes them,
            ``img_size`` and ``drop_path_rate``.
    """
    check_timm_name(timm_name, f"{key}.name")
    kwargs = {**kwargs, **dict(timm_args or {})}
    if pretrained is False or pretrained is None:
        return create(timm_name, kwargs), None
    source = weights_source(timm_name, pretrained, key)
    # Drawn from the run's generator, so that the new head differs from one seed to the next.
    seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
    fresh = create(source.model_name, kwargs, seed=seed)
    try:
        net = create(source.model_name, kwargs, seed=seed, **source.create)
    except (RuntimeError, KeyError, ValueError, AssertionError, IndexError) as err:
        raise ValueError(
            f"{key}.pretrained={pretrained}: timm could not load {source.what} into {timm_name} "
            f"({type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}). "
            f"{mismatch_text(fresh, source.tensors)}{foreign_fix(source, key)}"
        ) from None
    record = {"source": source.what, **compare(net, fresh, source.tensors)}
    check_fits(
        record,
        len(net.state_dict()),
        f"{key}.pretrained={pretrained}",
        f"{source.what} does not hold {timm_name}'s weights",
        foreign_fix(source, key).rstrip("."),
    )
    record["normalization"] = normalization(net, *data_stats)
    return net, record


def create(name: str, kwargs: dict[str, Any], seed: int | None = None, **load: Any) -> nn.Module:
    """``timm.create_model``; with ``seed``, under a forked generator seeded with it, so that two
    builds start from the same random tensors. timm's own notes on missing and unexpected keys are
    left out: the ``init`` record says what was loaded."""
    if seed is None:
        return timm.create_model(name, **load, **kwargs)
    builder = logging.getLogger("timm.models._builder")
    level = builder.level
    builder.setLevel(logging.ERROR)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return timm.create_model(name, **load, **kwargs)
    finally:
        builder.setLevel(level)


def compare(net: nn.Module, fresh: nn.Module, tensors: dict[str, Tensor]) -> dict[str, Any]:
    """What ``net`` took from ``tensors``: a tensor is loaded when it equals the file's, or differs
    from the same network's random start ``fresh`` (timm resized or renamed it on the way)."""
    start = fresh.state_dict()
    loaded, resized, new = 0, {}, []
    for name, tensor in net.state_dict().items():
        source = tensors.get(name)
        same = (
            source is not None
            and source.shape == tensor.shape
            and torch.equal(source.to(tensor.dtype), tensor)
        )
        if not same and torch.equal(tensor, start[name]):
            new.append(name)
            continue
        loaded += 1
        if source is not None and source.shape != tensor.shape:
            resized[name] = f"{shape_text(source)} -> {shape_text(tensor)}"
    taken = set(net.state_dict()) - set(new)
    return {
        "loaded": loaded,
        "resized": resized,
        "new": new,
        "unused": [n for n in tensors if n not in taken],
    }


def mismatch_text(net: nn.Module, tensors: dict[str, Tensor]) -> str:
    """The first tensors whose names or shapes differ between the network and the file."""
    state = net.state_dict()
    missing = [n for n in state if n not in tensors][:3]
    shapes = [
        f"{n} ({shape_text(tensors[n])} in the file, {shape_text(t)} here)"
        for n, t in state.items()
        if n in tensors and tensors[n].shape != t.shape
    ][:3]
    parts = ([f"not in the file: {', '.join(missing)}"] if missing else []) + (
        [f"other shapes: {'; '.join(shapes)}"] if shapes else []
    )
    return f"First mismatches: {'; '.join(parts)}. " if parts else ""


def normalization(net: nn.Module, mean: Sequence[float] | None, std: Sequence[float] | None) -> str | None:
    """Which statistics the data is normalized with: the weights' own (``size=pretrained`` sets
    ``data.mean``/``data.std`` to them) or the data config's; logged and kept in the record."""
    if mean is None or std is None:
        return None
    cfg = getattr(net, "pretrained_cfg", {}) or {}
    own = [cfg.get("mean"), cfg.get("std")]
    chans = len(mean)
    own = [[float(v) for v in s] if s else None for s in own]
    own = [s if s is None or len(s) == chans else [sum(s) / len(s)] * chans for s in own]
    ours = [[float(v) for v in mean], [float(v) for v in std]]
    if all(o is not None for o in own) and all(
        abs(a - b) < 1e-6 for o, d in zip(own, ours, strict=True) for a, b in zip(o, d, strict=True)
    ):
        return f"pretrained (the weights' mean {ours[0]}, std {ours[1]})"
    return f"data config's (mean {ours[0]}, std {ours[1]}; the weights' own: mean {own[0]}, std {own[1]})"
