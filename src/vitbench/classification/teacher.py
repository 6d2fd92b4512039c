"""The frozen CNN teacher of DeiT, loaded from a vitbench `model=cnn` checkpoint or from timm."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# `make teacher` (i.e. `vitbench-train experiment=teacher data=<dataset>`) writes here.
TEACHER_HINT = "make one with `make teacher` or `vitbench-train experiment=teacher data={dataset}`"


class TeacherError(ValueError):
    """A teacher that cannot teach this student: missing, foreign, or for other classes."""


class Teacher(nn.Module):
    """A frozen classifier that sees the student's images the way it was trained to see them.

    The student's batch is normalized with the student's data statistics; the teacher may have
    been trained with other statistics, another size or another number of channels (a timm
    ImageNet network). The input is mapped back to [0, 1] pixels, resized, given the teacher's
    channels and normalized with the teacher's statistics; when nothing differs it passes as is.

    Args:
        net: The teacher network, images ``(B, C_t, H_t, W_t)`` to logits ``(B, K)``.
        student_stats: ``(mean, std, img_size, in_chans)`` of the student's data.
        teacher_stats: The same for the data the teacher was trained on.
    """

    def __init__(self, net: nn.Module, student_stats: tuple, teacher_stats: tuple) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        # Convolutional teachers run in NHWC, as the conv students do (faster on CPU and GPU).
        self.channels_last = any(isinstance(m, nn.Conv2d) for m in net.modules())
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)
        s_mean, s_std, self.student_size, self.student_chans = student_stats
        t_mean, t_std, self.teacher_size, self.teacher_chans = teacher_stats
        self.same_input = (list(s_mean), list(s_std), self.student_size, self.student_chans) == (
            list(t_mean),
            list(t_std),
            self.teacher_size,
            self.teacher_chans,
        )
        self.register_buffer("s_mean", torch.tensor(s_mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("s_std", torch.tensor(s_std).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("t_mean", torch.tensor(t_mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("t_std", torch.tensor(t_std).view(1, -1, 1, 1), persistent=False)
        self.eval()

    def train(self, mode: bool = True) -> Teacher:
        # Frozen means frozen: batch-norm statistics never update, whatever Lightning asks.
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        """Student-normalized images ``(B, C_s, H_s, W_s)`` -> teacher logits ``(B, K)``."""
        if not self.same_input:
            x = x * self.s_std + self.s_mean  # back to [0, 1] pixels
            if self.teacher_chans != self.student_chans:
                x = x.mean(1, keepdim=True).expand(-1, self.teacher_chans, -1, -1)  # grey <-> RGB
            if self.teacher_size != self.student_size:
                x = F.interpolate(x, size=self.teacher_size, mode="bilinear", align_corners=False)
            x = (x - self.t_mean) / self.t_std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)


def load_teacher(
    checkpoint: str | None,
    name: str | None = None,
    pretrained: bool | str = False,
    *,
    num_classes: int,
    data_mean: Sequence[float],
    data_std: Sequence[float],
    img_size: int,
    in_chans: int,
    dataset: str,
) -> Teacher | None:
    """Build the teacher (``model.teacher``, Hydra's partial of this function) from a vitbench CNN
    checkpoint, or from timm by ``name`` with ``pretrained`` in any form of ``model.net.pretrained``
    (true, a weights file, a save_for_hf or vitbench-export folder); None when neither is given.

    Args:
        checkpoint, name, pretrained: Where the teacher comes from.
        num_classes, data_mean, data_std, img_size, in_chans: The student's data (``${data.*}``): the
            teacher must predict its classes, and sees its images as it was trained to.
        dataset: The dataset's name, for the messages that say how to make a teacher.

    Raises:
        TeacherError: the checkpoint is missing, is not a vitbench CNN checkpoint, or predicts
            another number of classes than the data has; the message says how to make one.
    """
    hint = TEACHER_HINT.format(dataset=dataset)
    if checkpoint:
        net, teacher_stats = cnn_from_checkpoint(Path(checkpoint), hint)
    elif name:
        net, teacher_stats = _from_timm(name, pretrained, num_classes, in_chans)
    else:
        return None
    # eval() before this probe: in training mode it would update the batch-norm running
    # statistics with a blank image and spoil the teacher.
    net.eval()
    with torch.no_grad():
        out = net(torch.zeros(1, teacher_stats[3], teacher_stats[2], teacher_stats[2])).shape[-1]
    if out != num_classes:
        raise TeacherError(
            f"the teacher predicts {out} classes but data={dataset} has {num_classes}; "
            f"train a teacher on this dataset: {hint}."
        )
    student_stats = ([float(m) for m in data_mean], [float(s) for s in data_std], img_size, in_chans)
    return Teacher(net, student_stats, teacher_stats)


def cnn_from_checkpoint(path: Path, hint: str, role: str = "teacher") -> tuple[nn.Module, tuple]:
    """The network of a vitbench ``model=cnn`` checkpoint and the data it was trained on,
    ``(mean, std, img_size, in_chans)``; ``role`` ("teacher", "feature CNN") names it in errors."""
    from vitbench.classification.base import build_network

    if not path.is_file():
        raise TeacherError(f"{role} checkpoint {path} does not exist; {hint}.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        hparams = ckpt["hyper_parameters"]
        if ckpt["vitbench"]["module"] != "ImageClassifier":  # a DeiT has two heads, a denoiser none
            raise TypeError(f"it holds a {ckpt['vitbench']['module']}, not a classifier's ImageClassifier")
        net = build_network(hparams["net"])
        # The network's weights only: metric states beside them vary between vitbench versions.
        weights = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
        net.load_state_dict(weights)
    except Exception as err:  # truncated file, foreign pickle, other architecture
        raise TeacherError(
            f"{role} checkpoint {path} is not a readable vitbench model=cnn checkpoint "
            f"({type(err).__name__}: {str(err)[:200]}); {hint}."
        ) from err
    # Lightning stores the datamodule's hyperparameters beside the model's: what the teacher saw.
    data = ckpt.get("datamodule_hyper_parameters") or {}
    stats = (
        data.get("mean"),
        data.get("std"),
        data.get("img_size"),
        data.get("in_chans", hparams["net"].get("in_chans")),
    )
    if None in stats:
        raise TeacherError(f"{role} checkpoint {path} does not record the data it was trained on; {hint}.")
    return net, stats


def _from_timm(name: str, pretrained: bool | str, num_classes: int, in_chans: int) -> tuple[nn.Module, tuple]:
    import timm

    from vitbench.classification.pretrained import build_timm_net

    try:
        net, record = build_timm_net(name, pretrained, None, key="model.teacher", num_classes=num_classes)
    except ValueError as err:
        raise TeacherError(str(err)) from None
    heads = [n for n in (record or {}).get("new", []) if n.rsplit(".", 1)[0] in _classifier_names(net)]
    if heads:
        raise TeacherError(
            f"model.teacher.pretrained={pretrained}: the weights' classifier does not fit the {num_classes} classes "
            f"of the data, so the teacher's head ({', '.join(heads)}) would be random. A teacher must have been "
            "trained on this dataset: fine-tune one (vitbench-train model=cnn size=pretrained ...), export it with "
            "vitbench-export, and give that folder."
        )
    cfg = timm.data.resolve_data_config(model=net)
    chans, size, _ = cfg["input_size"]
    return net, (list(cfg["mean"]), list(cfg["std"]), size, chans)


def _classifier_names(net: nn.Module) -> set[str]:
    """The module names of a timm network's classifier(s), from its pretrained config."""
    names = (getattr(net, "pretrained_cfg", None) or {}).get("classifier") or ()
    return {names} if isinstance(names, str) else set(names)
