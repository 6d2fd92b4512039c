"""Bad input stops `vitbench-train` with a non-zero exit and a short message that names the fix,
and damages nothing an earlier run wrote."""

from __future__ import annotations

import pytest

from clirun import assert_stops_cleanly

SYNTHETIC = ("data=synthetic", "debug=fast", "logger=none")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("model=vitt",), "Could not find 'model/vitt'"),
        (
            ("trainer.max_epochs=abc",),
            "trainer.max_epochs='abc' is not an integer; write e.g. trainer.max_epochs=10",
        ),
        (("data.batch_size=0",), "data.batch_size must be >= 1, got 0"),
        (("data.train_subset=100000",), "data.train_subset=100000 is larger than the 384 training images"),
        (("model.net.patch_size=5",), "model.net.patch_size=5 does not divide data.img_size=28"),
        (("model=swin", "model.net.window_size=20"), "model.net.window_size <="),
        (("model=deit", "paths.teacher_dir=/nonexistent"), "make teacher"),
        (("trainer=gpu",), "PyTorch sees no GPU on this machine"),
        (("model.net.embed_dim=130",), "choose num_heads among the divisors of 130 (e.g. 1, 2, 5, 10)"),
    ],
    ids=[
        "unknown-option",
        "wrong-type",
        "batch-size",
        "train-subset",
        "patch",
        "swin-window",
        "no-teacher",
        "no-gpu",
        "heads",
    ],
)
def test_bad_input_gives_a_short_message_and_damages_nothing(
    tmp_path, overrides, message, monkeypatch, capsys
):
    assert_stops_cleanly(*SYNTHETIC, *overrides, message=message, tmp_path=tmp_path, monkeypatch=monkeypatch,
                         capsys=capsys)  # fmt: skip


def test_non_finite_loss_names_the_step_and_keeps_the_last_good_checkpoint(compose_cfg, monkeypatch):
    import torch

    from vitbench.classification import ImageClassifier
    from vitbench.train import train

    cfg = compose_cfg("data=synthetic", "debug=fast", "logger=csv", "trainer.max_epochs=2")
    healthy = ImageClassifier.training_loss

    def nan_in_second_epoch(self, x, y):
        loss, logits = healthy(self, x, y)
        return (loss * float("nan"), logits) if self.current_epoch == 1 else (loss, logits)

    monkeypatch.setattr(ImageClassifier, "training_loss", nan_in_second_epoch)
    with pytest.raises(
        FloatingPointError, match=r"loss is nan at step 4 \(epoch 1\); last good checkpoint: .*last.ckpt"
    ):
        train(cfg)
    last = torch.load(f"{cfg.paths.output_dir}/checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 0 and all(torch.isfinite(v).all() for v in last["state_dict"].values())
