"""k-NN and linear-probe accuracy against hand computations and features with a known answer, and
how a grid of settings is chosen."""

import math

import torch

from vitbench.pretraining.frozen_features import (
    ProbeData,
    Setting,
    Split,
    knn_accuracy,
    linear_probe_accuracy,
    probe_data,
    probe_encoders,
)


def clusters(n: int, classes: int, dim: int, spread: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` features around ``classes`` random centres (unit-norm, far apart), and their labels."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(
        torch.randn(classes, dim, generator=torch.Generator().manual_seed(99)), dim=1
    )
    labels = torch.arange(n) % classes
    return 5 * centres[labels] + spread * torch.randn(n, dim, generator=g), labels


def test_knn_by_hand_is_a_weighted_vote_not_a_majority():
    # Two far training images of class 0, one close one of class 1; k = 3, temperature 0.07.
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])
    labels = torch.tensor([0, 0, 1])
    query = torch.tensor([[0.8, 0.6]])  # cosine similarities: 0.8, 0.6, 1.0
    votes = {0: math.exp(0.8 / 0.07) + math.exp(0.6 / 0.07), 1: math.exp(1.0 / 0.07)}
    assert max(votes, key=votes.get) == 1  # one close neighbour outweighs two far ones
    assert knn_accuracy(train, labels, query, torch.tensor([1]), num_classes=2, k=3) == 1.0
    # With a very high temperature every neighbour weighs the same: the majority (class 0) wins.
    assert knn_accuracy(train, labels, query, torch.tensor([0]), num_classes=2, k=3, temperature=1e6) == 1.0
    # k = 1: the nearest alone.
    assert knn_accuracy(train, labels, torch.tensor([[0.9, 0.1]]), torch.tensor([0]), 2, k=1) == 1.0


def test_knn_uses_the_cosine_so_the_scale_of_a_feature_does_not_matter():
    train, labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1])
    far_but_aligned = torch.tensor([[100.0, 1.0]])  # euclidean: nearer (0, 1)? no: cosine says class 0
    assert knn_accuracy(train, labels, far_but_aligned, torch.tensor([0]), 2, k=1) == 1.0


def test_separable_clusters_score_one_and_random_features_score_chance():
    train, y_train = clusters(600, 10, 16, 0.5, seed=0)
    test, y_test = clusters(300, 10, 16, 0.5, seed=1)
    assert knn_accuracy(train, y_train, test, y_test, 10) == 1.0
    assert linear_probe_accuracy(train, y_train, test, y_test, 10) == 1.0
    g = torch.Generator().manual_seed(2)
    noise_train, noise_test = torch.randn(2000, 16, generator=g), torch.randn(2000, 16, generator=g)
    random_train, random_test = (
        torch.randint(0, 10, (2000,), generator=g),
        torch.randint(0, 10, (2000,), generator=g),
    )
    assert abs(knn_accuracy(noise_train, random_train, noise_test, random_test, 10) - 0.1) < 0.03
    assert abs(linear_probe_accuracy(noise_train, random_train, noise_test, random_test, 10) - 0.1) < 0.03


def test_the_linear_probe_finds_the_boundary_between_two_classes_on_one_axis():
    # Class 0 on x < 0, class 1 on x > 0, the second feature noise 1000 times larger (standardised away).
    g = torch.Generator().manual_seed(0)
    x = torch.cat([-1 - torch.rand(200, 1, generator=g), 1 + torch.rand(200, 1, generator=g)])
    train = torch.cat([x, 1000 * torch.randn(400, 1, generator=g)], dim=1)
    labels = torch.cat([torch.zeros(200), torch.ones(200)]).long()
    test = torch.tensor([[-0.3, 5000.0], [0.3, -5000.0], [-2.0, 0.0], [2.0, 0.0]])
    assert linear_probe_accuracy(train, labels, test, torch.tensor([0, 1, 0, 1]), 2) == 1.0
    assert linear_probe_accuracy(train, labels, test, torch.tensor([1, 0, 1, 0]), 2) == 0.0


def test_the_linear_probe_is_deterministic():
    train, y_train = clusters(300, 5, 8, 3.0, seed=0)  # overlapping: the recipe, not the data, decides
    test, y_test = clusters(200, 5, 8, 3.0, seed=1)
    first = linear_probe_accuracy(train, y_train, test, y_test, 5)
    torch.manual_seed(123)
    assert linear_probe_accuracy(train, y_train, test, y_test, 5) == first and 0.3 < first < 1.0


def fake_data(n: int = 200) -> ProbeData:
    """Images whose class is their bright row (of 4); three splits."""

    def split(seed: int) -> Split:
        labels = torch.arange(n) % 4
        images = torch.randint(0, 30, (n, 1, 4, 4), generator=torch.Generator().manual_seed(seed))
        images[torch.arange(n), 0, labels] += 200
        return Split(images.to(torch.uint8), labels)

    return ProbeData(split(0), split(1), split(2), (0.5,), (0.25,), 4)


def test_a_grid_is_chosen_on_validation_and_reported_whole():
    data = fake_data()
    good = Setting({"block": 1, "t": 1.0}, lambda x, g: x.flatten(1), "pixels")
    noisy = Setting({"block": 2, "t": 0.0}, lambda x, g: torch.randn(len(x), 16, generator=g), "noise")
    result = probe_encoders([noisy, good], data, torch.device("cpu"))
    probe = result["probe"]
    assert (probe["block"], probe["t"], probe["chosen_by"]) == (1, 1.0, "validation linear_acc")
    assert result["knn_acc"] == 1.0 and result["linear_acc"] == 1.0
    assert [row["block"] for row in probe["grid"]] == [2, 1] and probe["grid"][0]["linear_acc"] < 0.5
    assert (probe["train_images"], probe["test_images"]) == (200, 200)
    without_val = probe_encoders(
        [noisy, good], ProbeData(data.train, data.test, None, (0.5,), (0.25,), 4), torch.device("cpu")
    )
    assert without_val["probe"]["chosen_by"] == "test linear_acc (no validation split)"


def test_probe_data_reads_the_datamodule_and_keeps_the_first_training_images():
    from vitbench.data import ImageDataModule, Synthetic

    dm = ImageDataModule(Synthetic(num_images=128), 28, 1, [0.5], [0.25], num_classes=10, val_size=32)
    data = probe_data(dm, train_size=40)
    assert len(data.train.labels) == 40 and torch.equal(data.train.images, dm.data_train.images[:40])
    assert len(data.val.labels) == 32 and len(data.test.labels) == 32 and data.num_classes == 10
    assert data.mean == (0.5,) and data.std == (0.25,)


def test_a_streamed_datamodule_is_read_into_memory_for_the_probe(tmp_path):
    """The probe needs whole splits as uint8 images: a stream-storage datamodule is rebuilt in memory,
    with the same split (the same images in the same order)."""
    from data_writers import write_photo_folder
    from vitbench.data import ImageDataModule, ImageFolder

    root = write_photo_folder(tmp_path / "photos", per_class=6, test_per_class=2)
    args = dict(source=ImageFolder(root=str(root)), img_size=24, in_chans=3, mean=[0.5] * 3, std=[0.25] * 3,
                val_size=4)  # fmt: skip
    streamed = probe_data(ImageDataModule(**args, storage="stream"))
    memory = probe_data(ImageDataModule(**args, storage="memory"))
    for split in ("train", "val", "test"):
        a, b = getattr(streamed, split), getattr(memory, split)
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels), split
    assert len(streamed.train.labels) == 20 and len(streamed.test.labels) == 8
