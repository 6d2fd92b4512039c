"""DeiT: the teacher stays frozen, out of the optimizer and out of the checkpoint; bad teachers stop early."""

from __future__ import annotations

import functools

import pytest
import pytorch_lightning as pl
import torch
from tiny_models import classifier

from vitbench.classification import DeiTModule, DistillationLoss, ImageClassifier
from vitbench.classification.teacher import TeacherError, load_teacher
from vitbench.data import ImageDataModule, Synthetic

TINY_DEIT = dict(img_size=28, in_chans=1, patch_size=7, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0)
TINY_CNN = dict(in_chans=1, channels=(8, 16, 16, 32), layers=(1, 1, 1, 1))
STUDENT = dict(num_classes=10, data_mean=[0.5], data_std=[0.25], img_size=28, in_chans=1, dataset="synthetic")


def synthetic_data(num_classes: int = 10) -> ImageDataModule:
    return ImageDataModule(
        Synthetic(num_images=256),
        img_size=28,
        in_chans=1,
        num_classes=num_classes,
        mean=[0.5],
        std=[0.25],
        batch_size=32,
        val_size=64,
    )


def fit(module: pl.LightningModule, tmp_path, data: ImageDataModule, epochs: int = 1) -> pl.Trainer:
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=epochs,
        limit_train_batches=3,
        limit_val_batches=2,
        num_sanity_val_steps=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(module, datamodule=data)
    return trainer


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory) -> str:
    """A real vitbench CNN checkpoint, trained for a few steps on synthetic data."""
    tmp = tmp_path_factory.mktemp("teacher")
    trainer = fit(classifier("cnn", num_classes=10, **TINY_CNN), tmp, synthetic_data())
    path = tmp / "teacher.ckpt"
    trainer.save_checkpoint(path)
    return str(path)


def deit(teacher_ckpt: str | None, kind: str = "hard", **kwargs) -> DeiTModule:
    """What Hydra builds from model=deit: the network's config, the loss, and the teacher as a partial."""
    return classifier(
        "deit",
        num_classes=10,
        criterion=DistillationLoss(kind),
        teacher=functools.partial(load_teacher, teacher_ckpt, **STUDENT),
        **TINY_DEIT,
        **kwargs,
    )


def test_teacher_is_frozen_in_eval_and_never_optimized(teacher_ckpt, tmp_path):
    student = deit(teacher_ckpt)
    teacher = student.teacher
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    trainer = fit(student, tmp_path, synthetic_data(), epochs=2)  # validation ran twice
    assert not teacher.training and not teacher.net.training
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    # Batch-norm running statistics included: nothing of the teacher changed.
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    optimized = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert not optimized & {id(p) for p in teacher.parameters()}
    assert optimized == {id(p) for p in student.net.parameters()}


def test_checkpoint_holds_no_teacher_and_reloads_without_it(teacher_ckpt, tmp_path):
    student = deit(teacher_ckpt)
    trainer = fit(student, tmp_path, synthetic_data())
    path = tmp_path / "student.ckpt"
    trainer.save_checkpoint(path)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert not [k for k in ckpt["state_dict"] if "teacher" in k]
    assert "teacher" not in ckpt["hyper_parameters"] and "criterion" not in ckpt["hyper_parameters"]
    reloaded = DeiTModule.load_from_checkpoint(path, weights_only=True)
    assert reloaded.teacher is None and reloaded.criterion.kind == "none"
    x = torch.randn(4, 1, 28, 28)
    student.eval(), reloaded.eval()
    torch.testing.assert_close(reloaded(x), student(x))


def test_eval_prediction_is_the_average_of_the_heads_and_each_head_is_logged(teacher_ckpt, tmp_path):
    student = deit(teacher_ckpt)
    trainer = fit(student, tmp_path, synthetic_data())
    for key in ("val/acc", "val/acc_cls", "val/acc_dist"):
        assert 0.0 <= float(trainer.callback_metrics[key]) <= 1.0
    student.eval()
    x = torch.randn(3, 1, 28, 28)
    cls_logits, dist_logits = student.heads(x)
    torch.testing.assert_close(student(x), (cls_logits + dist_logits) / 2)


def test_distillation_loss_sees_the_teacher(teacher_ckpt):
    """Hard distillation with alpha=1 trains the distillation head on the teacher's labels only."""
    student = deit(teacher_ckpt, kind="hard")
    student.criterion.alpha = 1.0
    x, y = torch.randn(8, 1, 28, 28), torch.zeros(8, dtype=torch.long)
    loss, _ = student.training_loss(x, y)
    _, dist_logits = student.heads(x)
    expected = torch.nn.functional.cross_entropy(dist_logits, student.teacher(x).argmax(1))
    torch.testing.assert_close(loss, expected)


def test_missing_teacher_checkpoint_says_how_to_make_one(tmp_path):
    with pytest.raises(
        TeacherError, match=r"does not exist.*make teacher.*experiment=teacher data=synthetic"
    ):
        deit(str(tmp_path / "nope.ckpt"))


def test_teacher_for_other_classes_is_refused(tmp_path):
    trainer = fit(classifier("cnn", num_classes=5, **TINY_CNN), tmp_path, synthetic_data(num_classes=5))
    trainer.save_checkpoint(tmp_path / "five.ckpt")
    with pytest.raises(TeacherError, match=r"predicts 5 classes but data=synthetic has 10"):
        deit(str(tmp_path / "five.ckpt"))


def test_teacher_from_another_architecture_is_refused(tmp_path):
    trainer = fit(deit(None, kind="none"), tmp_path, synthetic_data())
    trainer.save_checkpoint(tmp_path / "deit.ckpt")
    with pytest.raises(TeacherError, match=r"not a readable vitbench model=cnn checkpoint"):
        deit(str(tmp_path / "deit.ckpt"))


def test_no_distillation_trains_without_a_teacher(tmp_path):
    trainer = fit(deit(None, kind="none"), tmp_path, synthetic_data())
    assert "val/acc_dist" in trainer.callback_metrics


def test_teacher_input_is_adapted_to_other_statistics_and_size(teacher_ckpt):
    """A teacher trained on (mean 0.5, std 0.25, 28 px) fed by a 32 px student with other statistics."""
    teacher = load_teacher(teacher_ckpt, **{**STUDENT, "data_mean": [0.2], "data_std": [0.4], "img_size": 32})
    pixels = torch.rand(2, 1, 32, 32)
    student_view = (pixels - 0.2) / 0.4
    resized = torch.nn.functional.interpolate(pixels, size=28, mode="bilinear", align_corners=False)
    torch.testing.assert_close(teacher(student_view), teacher.net((resized - 0.5) / 0.25))


def test_loading_the_teacher_leaves_its_weights_and_statistics_as_trained(teacher_ckpt):
    trained = ImageClassifier.load_from_checkpoint(teacher_ckpt, weights_only=True).eval()
    teacher = load_teacher(teacher_ckpt, **STUDENT)
    for key, value in trained.net.state_dict().items():  # batch-norm running statistics included
        assert torch.equal(teacher.net.state_dict()[key], value), key
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(teacher(x), trained(x))
