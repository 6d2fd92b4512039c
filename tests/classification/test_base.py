"""The shared ImageClassifier: hyperparameters, checkpoints, metrics, optimizer groups."""

from __future__ import annotations

import csv
import functools

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import Callback, LearningRateMonitor
from pytorch_lightning.loggers import CSVLogger
from tiny_models import NUM_CLASSES, TINY, class_images, image_size, loader, net, tiny_model
from torch import nn

from vitbench.classification import ImageClassifier
from vitbench.run import warmup_cosine


def tiny_trainer(tmp_path, **kwargs) -> pl.Trainer:
    defaults = dict(
        default_root_dir=tmp_path,
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return pl.Trainer(**{**defaults, **kwargs})


@pytest.mark.parametrize("name", list(TINY))
def test_checkpoint_reloads_without_hydra(name, tmp_path, adamw):
    scheduler = functools.partial(warmup_cosine, warmup_fraction=0.2)
    model = tiny_model(name, optimizer=adamw, scheduler=scheduler, label_smoothing=0.1)
    # Plain values only: the partials stay out, the network's plain config is in.
    assert "optimizer" not in model.hparams and "scheduler" not in model.hparams
    assert model.hparams["label_smoothing"] == 0.1 and model.hparams["net"]["num_classes"] == NUM_CLASSES
    assert set(TINY[name]) <= set(model.hparams["net"])
    assert all(
        isinstance(v, int | float | str | bool | tuple | None) for k, v in model.hparams.items() if k != "net"
    )

    x, y = class_images(16, image_size(name))
    trainer = tiny_trainer(tmp_path, limit_val_batches=1)
    trainer.fit(model, loader(x, y), loader(x, y))
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)

    reloaded = type(model).load_from_checkpoint(path)
    model.eval()
    reloaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), model(x), rtol=0, atol=0)


def test_training_accuracy_counts_are_checkpointed_and_older_checkpoints_still_load(tmp_path):
    model = tiny_model("cnn")
    x, y = class_images(16, image_size("cnn"))
    trainer = tiny_trainer(tmp_path, limit_val_batches=1)
    trainer.fit(model, loader(x, y), loader(x, y))
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=False)
    # The counts behind train/acc travel with the checkpoint (a resume mid-epoch continues them).
    assert {"train_metrics.acc.tp", "train_metrics.acc.fn"} <= set(checkpoint["state_dict"])
    # A checkpoint of an earlier vitbench has no such counts: it loads, with the counts at zero.
    checkpoint["state_dict"] = {
        k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("train_metrics.")
    }
    torch.save(checkpoint, path)
    reloaded = type(model).load_from_checkpoint(path)
    assert int(reloaded.train_metrics["acc"].tp.sum()) == 0
    model.eval()
    reloaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), model(x), rtol=0, atol=0)


class ScriptedAccuracy(ImageClassifier):
    """Evaluation accuracy follows a script per epoch; images carry their label in pixel (0, 0)."""

    def __init__(self, script: tuple[float, ...], num_classes: int = 4) -> None:
        super().__init__(net("cnn", num_classes=num_classes, channels=(4, 4, 4, 4)))
        self.script = script
        self.net = nn.Linear(1, num_classes)  # in place of the network: only forward below matters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.net(x[:, :, 0, 0])
        labels = x[:, 0, 0, 0].long()
        fraction = 1.0 if self.trainer.sanity_checking else self.script[self.current_epoch]
        correct = torch.arange(len(x)) < round(fraction * len(x))
        preds = torch.where(correct, labels, (labels + 1) % self.num_classes)
        return F.one_hot(preds, self.num_classes).float()


class RecordMetrics(Callback):
    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.epochs.append({k: float(v) for k, v in trainer.callback_metrics.items()})


def test_val_acc_best_is_the_max_over_epochs_not_the_sanity_check(tmp_path):
    x = torch.zeros(4, 1, 2, 2)
    y = torch.arange(4)
    x[:, 0, 0, 0] = y.float()
    record = RecordMetrics()
    # The sanity check scores 1.0; it must not count.
    trainer = tiny_trainer(tmp_path, max_epochs=3, callbacks=[record], num_sanity_val_steps=1)
    trainer.fit(ScriptedAccuracy(script=(0.5, 0.75, 0.25)), loader(x, y, 4), loader(x, y, 4))
    assert [e["val/acc"] for e in record.epochs] == [0.5, 0.75, 0.25]
    assert [e["val/acc_best"] for e in record.epochs] == [0.5, 0.75, 0.75]
    assert "val/acc_top5" not in record.epochs[0]  # only 4 classes


def test_soft_targets_train(tmp_path):
    model = tiny_model("cnn")
    x, y = class_images(16, image_size("cnn"))
    soft = (
        0.7 * F.one_hot(y, NUM_CLASSES).float() + 0.3 * F.one_hot((y + 1) % NUM_CLASSES, NUM_CLASSES).float()
    )

    loss, logits = model.training_loss(x, soft)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, soft).item())

    trainer = tiny_trainer(tmp_path, limit_val_batches=0)
    trainer.fit(model, loader(x, soft))
    metrics = trainer.callback_metrics
    assert torch.isfinite(metrics["train/loss"]) and 0.0 <= metrics["train/acc"] <= 1.0


def test_logged_keys_and_named_lr_groups(tmp_path, adamw):
    model = tiny_model("vit", optimizer=adamw, scheduler=warmup_cosine)
    x, y = class_images(16, image_size("vit"))
    logger = CSVLogger(tmp_path, name="run", version=0)
    trainer = tiny_trainer(
        tmp_path, max_epochs=2, logger=logger, log_every_n_steps=1, callbacks=[LearningRateMonitor()]
    )
    trainer.fit(model, loader(x, y), loader(x, y))
    trainer.test(model, loader(x, y))
    with open(tmp_path / "run" / "version_0" / "metrics.csv") as f:
        columns = set(next(csv.reader(f)))
    expected = {
        "train/loss",
        "train/acc",
        "val/loss",
        "val/acc",
        "val/acc_top5",
        "val/acc_best",
        "test/loss",
        "test/acc",
        "test/acc_top5",
        "lr/decay",
        "lr/no_decay",
    }
    assert expected <= columns, expected - columns
    assert 0.0 <= trainer.callback_metrics["test/acc"] <= 1.0


def test_weight_decay_spares_norms_biases_and_tokens(adamw):
    model = tiny_model("vit", optimizer=functools.partial(torch.optim.AdamW, lr=1e-3, weight_decay=0.1))
    groups = {g["name"]: g for g in model.configure_optimizers().param_groups}
    assert groups["decay"]["weight_decay"] == 0.1 and groups["no_decay"]["weight_decay"] == 0.0
    no_decay = {id(p) for p in groups["no_decay"]["params"]}
    named = dict(model.net.named_parameters())
    for name in ("pos_embed", "cls_token", "norm.weight", "head.bias", "blocks.0.attn.qkv.bias"):
        assert id(named[name]) in no_decay, name
    assert id(named["blocks.0.attn.qkv.weight"]) not in no_decay
    assert sum(len(g["params"]) for g in groups.values()) == len(named)


def test_default_optimizer_is_adamw():
    optimizer = tiny_model("cnn").configure_optimizers()
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.param_groups[0]["lr"] == 1e-3
    assert {g["weight_decay"] for g in optimizer.param_groups} == {0.0, 0.05}


def test_refuses_bad_label_smoothing():
    with pytest.raises(ValueError, match="model.label_smoothing=1.0"):
        tiny_model("cnn", label_smoothing=1.0)
