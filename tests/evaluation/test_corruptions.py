"""The corruption suite: shapes and ranges, identities, hand-computed values, determinism, severity
order, the stratified subset, the cache and the record keys."""

from __future__ import annotations

import pytest
import torch

from vitbench.evaluation import corruption_geometry as geometry
from vitbench.evaluation import corruption_ops as ops
from vitbench.evaluation import corruptions
from vitbench.evaluation.corruption_constants import MNIST_C, constants, names
from vitbench.evaluation.corruptions import (
    CORRUPTIONS,
    corrupt,
    corrupted_set,
    corruption_errors,
    stratified_subset,
    suite,
)


def blobs(n: int, channels: int, side: int, seed: int = 0) -> torch.Tensor:
    """uint8 (n, channels, side, side): a bright square of random place and colour on a dark ground."""
    g = torch.Generator().manual_seed(seed)
    images = torch.full((n, channels, side, side), 20, dtype=torch.uint8)
    for i in range(n):
        top, left = torch.randint(0, side // 2, (2,), generator=g).tolist()
        colour = torch.randint(120, 256, (channels, 1, 1), generator=g).to(torch.uint8)
        images[i, :, top : top + side // 2, left : left + side // 2] = colour
    return images


def change(clean: torch.Tensor, corrupted: torch.Tensor) -> float:
    """Mean absolute change in grey levels."""
    return (corrupted.float() - clean.float()).abs().mean().item()


@pytest.mark.parametrize(("channels", "side"), [(1, 28), (3, 32), (1, 20), (3, 48)])
def test_every_corruption_keeps_shape_dtype_and_changes_the_image(channels: int, side: int) -> None:
    images = blobs(4, channels, side)
    assert len(suite(channels)) == (16 if channels == 1 else 17)
    for name in suite(channels):
        for severity in (1, 5):
            out = corrupt(images, name, severity, torch.Generator().manual_seed(0))
            assert out.shape == images.shape and out.dtype == torch.uint8, name
        assert change(images, out) > 0.5, f"{name} at severity 5 left the images almost unchanged"


def test_severity_zero_and_neutral_constants_are_the_identity() -> None:
    grey, colour = blobs(3, 1, 28), blobs(3, 3, 32)
    assert torch.equal(corrupt(grey, "shot_noise", 0, torch.Generator()), grey)
    neutral = {
        "gaussian_noise": (0.0,),
        "contrast": (1.0,),
        "brightness": (0.0,),
        "saturate": (1.0, 0.0),
        "pixelate": (1.0,),
        "scale": (1.0,),
        "rotate": (0.0,),
        "shear": (0.0,),
        "translate": (0.0,),
        "zoom_blur": (1.0, 0.01),  # no zoom factor: the image alone
        "elastic_transform": (0.0, 0.0, 0.0, 0.0),
    }
    for name, levels in neutral.items():
        for images in (grey, colour) if name != "saturate" else (colour,):
            out = ops.to_uint8(CORRUPTIONS[name](images.float() / 255, torch.Generator(), *levels))
            assert torch.equal(out, images), name


def test_hand_computed_values() -> None:
    x = torch.tensor([[[[0.2, 0.6], [0.9, 0.5]]]])  # (1, 1, 2, 2), mean 0.55
    assert torch.allclose(
        ops.brightness(x, torch.Generator(), 0.3), torch.tensor([[[[0.5, 0.9], [1.0, 0.8]]]])
    )
    assert torch.allclose(ops.contrast(x, torch.Generator(), 0.5), 0.55 + (x - 0.55) * 0.5)
    # Brightness on colour lifts the value and keeps hue and saturation: (0.2, 0.4, 0.1) -> x 1.5.
    rgb = torch.tensor([0.2, 0.4, 0.1]).view(1, 3, 1, 1)
    assert torch.allclose(ops.brightness(rgb, torch.Generator(), 0.2), rgb * 1.5)
    # Saturation x 0.5 at the same hue and value: V = 0.4, S = 0.75 -> channels halve their distance to V.
    assert torch.allclose(
        ops.saturate(rgb, torch.Generator(), 0.5, 0.0), torch.tensor([0.3, 0.4, 0.25]).view(1, 3, 1, 1)
    )
    # Translation moves the content by whole pixels, zeros entering.
    image = torch.zeros(1, 1, 5, 5)
    image[0, 0, 2, 2] = 1.0
    moved = geometry.translate(image, torch.Generator().manual_seed(0), 1.0)
    assert moved.sum().item() == pytest.approx(1.0) and moved[0, 0, 2, 2] == 0
    assert moved[0, 0, 1:4, 1:4].sum().item() == pytest.approx(1.0)


def test_blurs_keep_a_constant_image_and_match_scipy() -> None:
    flat = torch.full((2, 3, 32, 32), 0.4)
    for blur in ("gaussian_blur", "defocus_blur", "motion_blur", "zoom_blur"):
        for severity in (1, 5):
            out = CORRUPTIONS[blur](flat, torch.Generator().manual_seed(0), *constants(blur, severity, 3, 32))
            assert torch.allclose(out, flat, atol=1e-5), (blur, severity)
    ndimage = pytest.importorskip("scipy.ndimage")
    image = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    # sigma 6 (MNIST-C's level 5) has a kernel wider than the image: the matrix still folds it.
    for sigma in (1.0, 6.0):
        ours = ops.gaussian_blur(image, torch.Generator(), sigma)[0, 0].numpy()
        theirs = ndimage.gaussian_filter(image[0, 0].double().numpy(), sigma, mode="nearest", truncate=4.0)
        assert abs(ours - theirs).max() < 1e-5
        rows = ops.blur_matrix(28, sigma * 4, 3.0, "reflect")
        theirs = ndimage.gaussian_filter(
            image[0, 0].double().numpy(), sigma * 4, mode="reflect", truncate=3.0
        )
        assert abs((rows @ image[0, 0] @ rows.T).numpy() - theirs).max() < 1e-5


def test_noise_has_the_stated_statistics() -> None:
    x = torch.full((1, 1, 200, 200), 0.5)
    flipped = ops.impulse_noise(x, torch.Generator().manual_seed(0), 0.27) != 0.5
    assert flipped.float().mean().item() == pytest.approx(0.27, abs=0.01)
    shot = ops.shot_noise(x, torch.Generator().manual_seed(0), 12.0)
    assert shot.mean().item() == pytest.approx(0.5, abs=0.01)
    assert shot.var().item() == pytest.approx(0.5 / 12, rel=0.1)  # Poisson: var(k / c) = x / c


def test_same_seed_same_images_other_seed_others() -> None:
    images = blobs(6, 3, 32)
    for name in (
        "gaussian_noise",
        "shot_noise",
        "impulse_noise",
        "motion_blur",
        "elastic_transform",
        "rotate",
    ):
        first = corrupt(images, name, 3, torch.Generator().manual_seed(7))
        assert torch.equal(first, corrupt(images, name, 3, torch.Generator().manual_seed(7))), name
        assert not torch.equal(first, corrupt(images, name, 3, torch.Generator().manual_seed(8))), name


@pytest.mark.parametrize(("channels", "side"), [(1, 28), (3, 32)])
def test_change_grows_with_severity(channels: int, side: int) -> None:
    images = blobs(32, channels, side)
    graded = [
        "gaussian_noise",
        "shot_noise",
        "impulse_noise",
        "gaussian_blur",
        "defocus_blur",
        "zoom_blur",
        "contrast",
    ]
    for name in graded + ["brightness"] * (channels == 1):
        changes = [
            change(images, corrupt(images, name, s, torch.Generator().manual_seed(0))) for s in range(1, 6)
        ]
        assert changes == sorted(changes), f"{name}: {changes}"


def test_constants_scale_with_the_side_and_say_where_they_come_from() -> None:
    assert constants("gaussian_blur", 5, 1, 28) == (6.0,)
    assert constants("gaussian_blur", 5, 1, 56) == (12.0,)  # a length: x side / 28
    assert constants("gaussian_noise", 5, 1, 56) == (0.38,)  # dimensionless: unchanged
    assert constants("shear", 2, 3, 32) == MNIST_C["shear"][1]  # geometric on colour: MNIST-C's
    assert constants("translate", 3, 3, 56) == (6.0,)
    assert "saturate" not in names(1)
    with pytest.raises(ValueError, match="'saturate' is not defined for 1-channel"):
        constants("saturate", 1, 1, 28)
    with pytest.raises(ValueError, match="severity 6 is not one of"):
        constants("contrast", 6, 1, 28)
    with pytest.raises(ValueError, match="unknown corruption 'fog'"):
        corrupt(blobs(1, 1, 28), "fog", 1, torch.Generator())
    with pytest.raises(ValueError, match="uint8 images"):
        corrupt(blobs(1, 1, 28).float(), "contrast", 1, torch.Generator())


def test_stratified_subset() -> None:
    labels = torch.arange(10).repeat_interleave(30)[
        torch.randperm(300, generator=torch.Generator().manual_seed(0))
    ]
    subset = stratified_subset(labels, 20, seed=3)
    assert torch.bincount(labels[subset]).tolist() == [20] * 10
    assert torch.equal(subset, stratified_subset(labels, 20, seed=3))
    assert not torch.equal(subset, stratified_subset(labels, 20, seed=4))
    assert torch.equal(subset, subset.sort().values) and len(set(subset.tolist())) == 200
    with pytest.raises(ValueError, match="class 0 has 30 images, fewer than per_class=31"):
        stratified_subset(labels, 31, seed=0)


def test_corrupted_set_is_cached_and_read_back(tmp_path, monkeypatch) -> None:
    images, labels = blobs(12, 1, 28), torch.arange(12) % 3
    built = corrupted_set(images, labels, ["contrast", "rotate"], (1, 5), seed=0, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.pt"))) == 4
    assert "not MNIST-C" in built.provenance["rotate"]

    def no_build(*args: object) -> torch.Tensor:
        raise AssertionError("the cache was not read")

    monkeypatch.setattr(corruptions, "_build", no_build)
    again = corrupted_set(images, labels, ["rotate"], (5,), seed=0, cache_dir=tmp_path)
    assert torch.equal(again.images["rotate"][5], built.images["rotate"][5])
    with pytest.raises(AssertionError, match="cache was not read"):  # another seed: another key
        corrupted_set(images, labels, ["rotate"], (5,), seed=1, cache_dir=tmp_path)
    monkeypatch.undo()
    fresh = corrupted_set(images, labels, ["rotate"], (5,), seed=0, cache_dir=None)
    assert torch.equal(fresh.images["rotate"][5], built.images["rotate"][5])  # a subset of names: same images


def test_corruption_errors_are_flat_record_keys() -> None:
    images, labels = blobs(10, 1, 28), torch.tensor([0, 1] * 5)
    corrupted = corrupted_set(images, labels, ["contrast", "impulse_noise"], (1, 2), seed=0)
    always_zero = corruption_errors(lambda x: torch.zeros(len(x), dtype=torch.long), corrupted, batch_size=3)
    assert set(always_zero) == {
        "corruption_err_clean",
        "corruption_err_mean",
        *(f"corruption_err_{n}_{s}" for n in ("contrast", "impulse_noise") for s in ("1", "2", "mean")),
    }
    assert all(v == 0.5 for v in always_zero.values())
    # Logits that always pick the right class: no error anywhere.
    oracle = iter([torch.nn.functional.one_hot(labels, 2).float()] * 5)
    assert set(corruption_errors(lambda x: next(oracle), corrupted, batch_size=10).values()) == {0.0}
