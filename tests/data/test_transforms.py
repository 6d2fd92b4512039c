"""The stream storage's per-image transforms: timm's recipe, drawn from each image's own generator."""

import math
import random

import numpy as np
import PIL
import pytest
import torch
from PIL import Image
from timm.data import auto_augment

from vitbench.data import EvalTransform, TrainTransform, image_generator
from vitbench.data.checks import check_stream_options
from vitbench.data.transforms import SquashTransform, auto_augment_policy, resized_crop_params

MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.25, 0.25)


def picture(h=40, w=56, seed=0):
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def train_transform(**overrides):
    kwargs = dict(img_size=24, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), hflip=True, auto_augment=None,
                  re_prob=0.0, re_mode="pixel", mean=MEAN, std=STD)  # fmt: skip
    kwargs.update(overrides)
    return TrainTransform(**kwargs)


def test_crop_params_keep_the_area_and_aspect_ranges():
    g = torch.Generator().manual_seed(0)
    scale, ratio = (0.25, 0.5), (0.5, 2.0)
    for _ in range(300):
        top, left, h, w = resized_crop_params(100, 80, scale, ratio, g)
        assert 0 <= top <= 100 - h and 0 <= left <= 80 - w
        # Rounding to whole pixels moves the area and aspect a little past the drawn values.
        assert 0.25 * 0.9 <= h * w / 8000 <= 0.5 * 1.1 and 0.5 * 0.9 <= w / h <= 2.0 * 1.1


def test_crop_params_fall_back_to_the_centre_within_the_ratio():
    # A 10 x 100 strip cannot hold a crop of aspect <= 2 covering 90 % of it: the centred fallback.
    g = torch.Generator().manual_seed(0)
    assert resized_crop_params(10, 100, (0.9, 1.0), (0.5, 2.0), g) == (0, 40, 10, 20)


def test_image_generator_depends_on_seed_epoch_and_index_only():
    def draw(*key):
        return torch.rand(4, generator=image_generator(*key))

    assert torch.equal(draw(1, 2, 3), draw(1, 2, 3))
    for other in [(0, 2, 3), (1, 3, 3), (1, 2, 4)]:
        assert not torch.equal(draw(1, 2, 3), draw(*other))


def test_train_transform_is_a_function_of_the_generator():
    tf = train_transform(auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.5)
    x = picture()
    a, b = tf(x, image_generator(0, 0, 7)), tf(x, image_generator(0, 0, 7))
    assert a.dtype == torch.uint8 and a.shape == (3, 24, 24) and torch.equal(a, b)
    outputs = {tf(x, image_generator(0, epoch, 7)).numpy().tobytes() for epoch in range(6)}
    assert len(outputs) == 6  # each epoch its own augmentation


def test_auto_augment_leaves_the_process_random_state_alone():
    tf = train_transform(auto_augment="rand-m9-mstd0.5-inc1")
    random.seed(5)
    np.random.seed(5)
    expected = (random.random(), np.random.rand())
    random.seed(5)
    np.random.seed(5)
    for i in range(5):
        tf(picture(seed=i), image_generator(0, 0, i))
    assert (random.random(), np.random.rand()) == expected  # mixup's draws in the main process are unchanged


def test_without_crop_or_flip_the_picture_is_only_resized():
    tf = train_transform(scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=False)
    x = picture(32, 32)
    assert torch.equal(tf(x, image_generator(0, 0, 0)), SquashTransform(24)(x))


def test_flip_mirrors_about_half_the_images():
    tf = train_transform(scale=(1.0, 1.0), ratio=(1.0, 1.0))
    x = picture(24, 24)
    flipped = sum(torch.equal(tf(x, image_generator(0, 0, i)), x.flip(-1)) for i in range(200))
    assert 70 < flipped < 130


@pytest.mark.parametrize("mode", ["const", "rand", "pixel"])
def test_random_erasing_fills_one_box_in_pixel_space(mode):
    tf = train_transform(scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=False, re_prob=1.0, re_mode=mode)
    x = torch.full((3, 24, 24), 7, dtype=torch.uint8)
    out = tf(x, image_generator(0, 0, 3))
    changed = (out != x).any(0)  # (H, W)
    rows, cols = changed.any(1).nonzero(), changed.any(0).nonzero()
    box = out[:, rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    area = box.shape[1] * box.shape[2]
    assert (
        changed.sum() == area and 0.015 * 576 <= area <= 576 / 3 * 1.2
    )  # one rectangle, 2 %..1/3 of the image
    if mode == "const":  # timm's zeros in normalised space: the mean colour
        assert box.flatten(1).unique(dim=1).tolist() == [[128], [102], [76]]
    if mode == "pixel":
        assert box.float().std() > 20  # per-pixel noise of the data's spread


def test_erasing_probability_zero_never_erases():
    tf = train_transform(scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=False, re_prob=0.0)
    x = picture(24, 24)
    assert all(torch.equal(tf(x, image_generator(0, 0, i)), x) for i in range(20))


def test_posterize_at_magnitude_ten_survives_pillow_13():
    """timm's PosterizeIncreasing keeps 4 - int(m / 10 * 4) bits: 0 at magnitude 10, which Pillow 13
    refuses (KNOWN-TRAPS); guarded, it gives the black image older Pillow gave."""
    policy = auto_augment_policy("rand-m10-n1-mstd0-inc1", 24, MEAN)
    posterize_ops = [op for op in policy.ops if op.name == "PosterizeIncreasing"]
    assert posterize_ops
    policy.ops = posterize_ops  # draw only the op that crashed
    for op in posterize_ops:
        op.prob = 1.0
    image = Image.fromarray(picture(24, 24).permute(1, 2, 0).numpy())
    for _ in range(20):
        assert np.array(policy(image)).max() == 0
    if int(PIL.__version__.split(".")[0]) >= 13:  # the trap itself, unguarded
        with pytest.raises(ValueError, match="bits must be between"):
            auto_augment.posterize(image, 0)


def test_randaugment_over_many_images_at_high_magnitude_never_crashes():
    tf = train_transform(auto_augment="rand-m10-n3-mstd0.5-inc1")
    for i in range(150):
        assert tf(picture(seed=i), image_generator(0, 0, i)).shape == (3, 24, 24)


def test_grey_images_go_through_auto_augment():
    tf = TrainTransform(
        24, (0.5, 1), (3 / 4, 4 / 3), True, "rand-m9-mstd0.5-inc1", 0.5, "pixel", (0.5,), (0.25,)
    )
    for i in range(30):
        assert tf(picture(seed=i)[:1], image_generator(0, 0, i)).shape == (1, 24, 24)


@pytest.mark.parametrize("config", ["rand-m9-x4", "randaug-zz", "garbage"])
def test_unparsable_auto_augment_names_the_key(config):
    with pytest.raises(ValueError, match=r"data.auto_augment=.*rand-m9-mstd0.5-inc1"):
        train_transform(auto_augment=config)


def test_eval_transform_resizes_the_shorter_side_then_crops_the_centre():
    x = picture(40, 80)
    out = EvalTransform(24, crop_pct=0.75)(x)  # shorter side to floor(24 / 0.75) = 32: 32 x 64, then 24 x 24
    resized = torch.nn.functional.interpolate(x[None].float(), size=(32, 64), mode="bilinear", antialias=True)
    expected = resized[0, :, 4:28, 20:44]
    assert out.shape == (3, 24, 24) and (out.float() - expected).abs().max() < 1.01  # uint8 rounding
    square = picture(48, 48)
    assert torch.equal(EvalTransform(24, crop_pct=1.0)(square), SquashTransform(24)(square))


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"crop_pct": 0.0}, "data.crop_pct"), ({"crop_pct": 1.5}, "data.crop_pct"), ({"re_prob": 2.0}, "data.re_prob"),
     ({"scale": (0.5, 0.1)}, "data.scale"), ({"ratio": (0,)}, "data.ratio"), ({"re_mode": "noise"}, "data.re_mode")],
)  # fmt: skip
def test_bad_stream_options_name_the_key(kwargs, key):
    args = dict(scale=(0.08, 1.0), ratio=(0.75, 4 / 3), re_prob=0.0, re_mode="pixel", crop_pct=0.875)
    with pytest.raises(ValueError, match=key):
        check_stream_options(**{**args, **kwargs})
    assert math.isfinite(args["crop_pct"])


def test_a_part_timm_would_skip_is_refused_by_name():
    """The issue's second bad input: timm read `rand-mXX-foo` as plain `rand`, skipping both parts."""
    with pytest.raises(ValueError) as e:
        train_transform(auto_augment="rand-mXX-foo")
    assert str(e.value) == (
        "data.auto_augment=rand-mXX-foo: timm cannot read the part 'mXX' (a section of rand is a key and its "
        "number, one of m<int>, n<int>, p<float>, mstd<float>, mmax<int>, inc<int>). Write e.g. "
        "data.auto_augment=rand-m9-mstd0.5-inc1 (RandAugment: magnitude 9, its noise 0.5, increasing ops), "
        "augmix-m5-w4-d2, original or v0; or null for none."
    )


@pytest.mark.parametrize(
    ("config", "part"),
    [("rand-m9-tfoo", "'tfoo'"), ("rand-m9.5", "'m9.5'"), ("augmix-m5-n2", "'n2'"), ("v9", "'v9'")],
)
def test_every_unreadable_part_is_named(config, part):
    with pytest.raises(ValueError, match=f"data.auto_augment={config}: timm cannot read the part {part}"):
        train_transform(auto_augment=config)


@pytest.mark.parametrize(
    "config",
    [
        "rand-m9-mstd0.5-inc1",
        "rand-m9-n3-mstd0.5",
        "rand-mstd1-tweights",
        "augmix-m5-w4-d2",
        "original",
        "v0r-mstd0.5",
    ],
)
def test_timm_strings_are_accepted(config):
    assert train_transform(auto_augment=config).policy is not None
