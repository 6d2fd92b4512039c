import time
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch

from data_writers import write_fashion, write_photo_folder
from vitbench.data import FashionMNIST, ImageDataModule, ImageFolder, Synthetic, normalize


def synthetic(**overrides):
    kwargs = dict(
        img_size=16, in_chans=3, num_classes=4, mean=(0.5,) * 3, std=(0.25,) * 3, batch_size=32, val_size=64,
    )  # fmt: skip
    kwargs.update(overrides)
    return ImageDataModule(Synthetic(num_images=kwargs.pop("num_images", 512)), **kwargs)


def first_batch(dm, training):
    dm.trainer = SimpleNamespace(training=training)  # what on_after_batch_transfer reads from the Trainer
    loader = dm.train_dataloader() if training else dm.val_dataloader()
    return dm.on_after_batch_transfer(next(iter(loader)), 0)


def test_batches_after_transfer_train_and_eval():
    dm = synthetic(mixup_alpha=0.8)
    dm.setup("fit")
    assert dm.num_train == 512 - 64 and len(dm.data_val) == 64 and len(dm.data_test) == 128
    raw_x, raw_y = next(iter(dm.train_dataloader()))
    assert raw_x.dtype == torch.uint8 and raw_x.shape == (32, 3, 16, 16) and raw_y.dtype == torch.int64
    x, y = first_batch(dm, training=True)
    assert x.dtype == torch.float32 and x.shape == (32, 3, 16, 16)
    assert y.shape == (32, 4) and torch.allclose(y.sum(1), torch.ones(32))
    x, y = first_batch(dm, training=False)
    assert x.shape == (64, 3, 16, 16) and x.dtype == torch.float32  # eval batch is 2x batch_size
    assert y.dtype == torch.int64 and y.shape == (64,)
    assert torch.allclose(
        x, (dm.data_val.images.float() / 255 - 0.5) / 0.25, atol=1e-5
    )  # eval: normalize only, no shuffle


def test_no_trainer_means_normalize_only():
    dm = synthetic(crop_padding=4)
    dm.setup()
    xb, yb = dm.data_train.__getitems__([0, 1])
    x, y = dm.on_after_batch_transfer((xb, yb), 0)
    assert torch.allclose(x, (xb.float() / 255 - 0.5) / 0.25, atol=1e-5) and torch.equal(y, yb)


def test_validation_split_fixed_across_global_seeds_and_disjoint():
    splits = []
    for seed in (1, 2):
        pl.seed_everything(seed)
        dm = synthetic(val_size=100, train_subset=200)
        dm.setup()
        splits.append((dm.val_indices, dm.train_indices, dm.data_val.images))
    (val1, train1, img1), (val2, train2, img2) = splits
    assert torch.equal(val1, val2) and torch.equal(img1, img2) and torch.equal(train1, train2)
    assert len(train1) == 200 and not set(val1.tolist()) & set(train1.tolist())
    other = synthetic(val_size=100, split_seed=7)
    other.setup()
    assert not torch.equal(other.val_indices, val1)  # split_seed, not the global seed, picks the split


def test_train_subset_too_large_is_explained():
    dm = synthetic(val_size=100, train_subset=1000)
    with pytest.raises(ValueError) as e:
        dm.setup()
    assert (
        "data.train_subset=1000" in str(e.value) and "412" in str(e.value) and "data.val_size" in str(e.value)
    )


def test_val_size_too_large_is_explained():
    with pytest.raises(ValueError, match="data.val_size=600"):
        synthetic(val_size=600).setup()


@pytest.mark.parametrize(
    "overrides,key",
    [({"batch_size": 0}, "data.batch_size"), ({"val_size": -1}, "data.val_size"),
     ({"num_classes": 1}, "data.num_classes"), ({"mean": (0.5,)}, "data.mean"),
     ({"num_classes": None}, "data.num_classes is null but synthetic does not say")],
)  # fmt: skip
def test_bad_arguments_are_named(overrides, key):
    with pytest.raises(ValueError, match=key):
        synthetic(**overrides)


def test_config_mismatch_with_data_is_explained(tmp_path, no_debian):
    write_fashion(tmp_path, "torchvision")  # 1 x 28 x 28, labels 0..9
    rgb = dict(source=FashionMNIST(root=str(tmp_path)), val_size=4, mean=(0.5,) * 3, std=(0.5,) * 3)
    with pytest.raises(ValueError, match="data.in_chans=3"):
        ImageDataModule(img_size=28, in_chans=3, **rgb).setup()
    grey = dict(rgb, mean=(0.5,), std=(0.5,))
    with pytest.raises(ValueError) as e:
        ImageDataModule(img_size=28, in_chans=1, num_classes=5, **grey)
    assert str(e.value) == (
        "data.num_classes=5 but Fashion-MNIST has 10 classes (T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, "
        "Shirt, Sneaker, Bag, Ankle boot); set data.num_classes=10, or null to take the source's number."
    )
    dm = ImageDataModule(img_size=28, in_chans=1, **grey)
    dm.setup()
    assert dm.num_classes == 10 and dm.hparams.num_classes == 10
    assert dm.num_train == 16 and dm.classes[0] == "T-shirt/top"


def test_a_fixed_size_set_stays_small_in_memory_and_is_resized_on_the_device(tmp_path, no_debian):
    """Fashion-MNIST at data.img_size=56 (224 in a fine-tuning run): held at 28 px, batches at 56 px."""
    write_fashion(tmp_path, "torchvision")
    dm = ImageDataModule(
        FashionMNIST(root=str(tmp_path)), img_size=56, in_chans=1, mean=(0.5,), std=(0.5,), val_size=4,
        batch_size=4, crop_padding=2, mixup_alpha=0.8,
    )  # fmt: skip
    dm.setup()
    assert dm.stored_size == 28 and dm.data_train.images.shape[1:] == (1, 28, 28)
    x, y = first_batch(dm, training=True)
    assert x.shape == (4, 1, 56, 56) and y.shape == (4, 10)  # cropped, flipped and mixed at 28, then resized
    x, y = first_batch(dm, training=False)
    normalized = (dm.data_val.images.float() / 255 - 0.5) / 0.5
    resized = torch.nn.functional.interpolate(normalized, size=(56, 56), mode="bicubic", align_corners=False)
    torch.testing.assert_close(x, resized)
    # At its own size nothing is resized: the same tensors as ever.
    same = ImageDataModule.from_hparams(dict(dm.hparams), img_size=28)
    same.setup()
    assert same.stored_size is None
    assert torch.equal(first_batch(same, training=False)[0], normalize(same.data_val.images, (0.5,), (0.5,)))
    # The channels are not converted: grey data into an RGB config is still refused.
    with pytest.raises(ValueError, match="data.in_chans=3"):
        ImageDataModule.from_hparams(dict(dm.hparams), in_chans=3, mean=(0.5,) * 3, std=(0.5,) * 3).setup()


def test_hparams_are_plain_and_rebuild_the_datamodule(tmp_path):
    """A checkpoint's datamodule_hyper_parameters: plain values a DeiT teacher and vitbench-predict read."""
    write_photo_folder(tmp_path / "photos", per_class=2, test_per_class=1, classes=("ant", "bee", "cat"))
    dm = ImageDataModule(
        ImageFolder(root=str(tmp_path / "photos")), 16, 3, (0.5,) * 3, (0.25,) * 3, val_size=2
    )
    assert dm.hparams.source == {
        "_target_": "vitbench.data.sources.folder.ImageFolder",
        "root": str(tmp_path / "photos"),
    }
    assert dm.hparams.num_classes == 3 and dm.classes == ["ant", "bee", "cat"]
    assert (dm.hparams.mean, dm.hparams.img_size, dm.hparams.in_chans) == ((0.5,) * 3, 16, 3)
    moved = tmp_path / "moved"
    (tmp_path / "photos").rename(moved)
    again = ImageDataModule.from_hparams(dict(dm.hparams), root=str(moved))
    again.setup()
    assert again.source == ImageFolder(root=str(moved)) and again.num_train == 4
    with pytest.raises(ValueError, match="not read from a folder"):
        ImageDataModule.from_hparams(dict(synthetic().hparams), root=str(moved))


def test_an_image_folder_with_other_classes_than_stated_is_refused(tmp_path):
    """The issue's first bad input: 3 class folders and data.num_classes=5 trained a 5-way head."""
    write_photo_folder(tmp_path, per_class=2, test_per_class=1, classes=("ant", "bee", "cat"))
    with pytest.raises(ValueError) as e:
        ImageDataModule(ImageFolder(root=str(tmp_path)), 16, 3, (0.5,) * 3, (0.25,) * 3, num_classes=5)
    assert str(e.value) == (
        f"data.num_classes=5 but the image folder data.source.root={tmp_path} has 3 classes (ant, bee, cat); "
        "set data.num_classes=3, or null to take the source's number."
    )


def test_train_epoch_covers_the_set_in_full_batches():
    dm = synthetic(
        img_size=28, in_chans=1, mean=(0.5,), std=(0.5,), num_images=10_000, val_size=0, batch_size=256
    )
    dm.setup()
    dm.trainer = SimpleNamespace(training=True)
    seen = torch.zeros(10_000, dtype=torch.long)
    batches = 0
    for xb, yb in dm.train_dataloader():
        x, _ = dm.on_after_batch_transfer((xb, yb), 0)
        assert x.shape == (256, 1, 28, 28)
        batches += 1
    assert batches == 10_000 // 256  # drop_last: 39 full batches
    # Shuffled without replacement: one epoch of indices never repeats.
    sampler_idx = torch.tensor(list(iter(dm.train_dataloader().batch_sampler))).flatten()
    seen.index_add_(0, sampler_idx, torch.ones_like(sampler_idx))
    assert seen.max() == 1 and seen.sum() == 39 * 256
    assert dm.val_dataloader() == []


@pytest.mark.slow  # a measurement, not a check: tens of seconds when other jobs share the CPU
def test_loader_throughput_report(capsys):
    """Measures (does not assert) loader + augmentation images/s on 60k 28x28 images; see -s output."""
    dm = synthetic(
        img_size=28, in_chans=1, mean=(0.5,), std=(0.5,), num_images=60_000, val_size=0, batch_size=256
    )
    dm.setup()
    dm.trainer = SimpleNamespace(training=True)
    start, n = time.perf_counter(), 0
    for batch in dm.train_dataloader():
        n += len(dm.on_after_batch_transfer(batch, 0)[0])
    rate = n / (time.perf_counter() - start)
    with capsys.disabled():
        print(f"\n[loader+augment] {n} images at {rate:,.0f} images/s")
    assert n == (60_000 // 256) * 256


class _Probe(pl.LightningModule):
    """A linear classifier that records what reaches it, to check the datamodule's hook inside a Trainer."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(in_features, num_classes))
        self.losses, self.seen = [], {}

    def training_step(self, batch, _):
        x, y = batch
        self.seen["train"] = (x.dtype, y.dtype, tuple(y.shape))
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.losses.append(loss.item())
        return loss

    def validation_step(self, batch, _):
        self.seen["val"] = (batch[0].dtype, batch[1].dtype, tuple(batch[1].shape))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


def test_inside_trainer_augments_train_only_and_synthetic_is_learnable():
    pl.seed_everything(0)
    dm = synthetic(mixup_alpha=0.5)
    model = _Probe(3 * 16 * 16, 4)
    trainer = pl.Trainer(
        max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    assert model.seen["train"] == (torch.float32, torch.float32, (32, 4))  # mixed soft targets
    assert model.seen["val"] == (torch.float32, torch.int64, (64,))  # normalised, hard labels
    first, last = sum(model.losses[:5]) / 5, sum(model.losses[-5:]) / 5
    assert last < 0.5 * first, (first, last)
