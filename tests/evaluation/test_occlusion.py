"""The occlusion part against values known by hand: the aligned grid's cells are the ViT's patches, the
misaligned grid is moved half a cell with its cells wrapping round, fills are exact, an identity shuffle
changes nothing, 0 % dropped is the clean accuracy on the same subset, and the same seed gives the same
figures."""

import json

import pytest
import torch

from vitbench.classification.task import CLASSIFICATION
from vitbench.classification.vit import vit
from vitbench.evaluation import occlusion as part
from vitbench.evaluation.context import EvaluateError
from vitbench.evaluation.occlusion import (
    cell_side,
    drop_cells,
    dropped_count,
    fill_value,
    grid_offset,
    occlusion_figures,
    shuffle_cells,
)


def tiny_vit(img_size: int, patch_size: int, distilled: bool = False) -> torch.nn.Module:
    return vit(img_size=img_size, patch_size=patch_size, in_chans=1, embed_dim=16, depth=1, num_heads=2,
               distilled=distilled).eval()  # fmt: skip


def one_cell(cells: int, index: int) -> torch.Tensor:
    """(1, cells) bool: only cell `index` dropped."""
    return torch.arange(cells).eq(index)[None]


def test_the_aligned_grids_cells_are_the_vits_patches():
    net = tiny_vit(12, 4)  # a 3x3 grid of 4 px patches
    assert cell_side(net, 12, 12, 12) == 4
    image = torch.randint(1, 256, (1, 1, 12, 12), dtype=torch.uint8)
    dropped = drop_cells(image, one_cell(9, 4), 4, grid_offset("aligned", 4), fill_value("zero", [0.5]))
    changed = (dropped != image)[0, 0]
    assert torch.equal(
        changed.nonzero().unique(dim=0), torch.cartesian_prod(torch.arange(4, 8), torch.arange(4, 8))
    )
    # The ViT's own patch embedding: only the centre token (index 4 of the 3x3 grid) differs.
    with torch.no_grad():
        tokens = [net.patch_embed(x.float()) for x in (image, dropped)]  # (1, 9, 16) each
    assert (tokens[0] - tokens[1]).abs().amax(-1).gt(0)[0].nonzero().flatten().tolist() == [4]


def test_the_cell_side_of_each_kind_of_network():
    assert cell_side(tiny_vit(12, 4, distilled=True), 12, 12, 12) == 4  # DeiT: its patches too
    assert cell_side(tiny_vit(24, 4), 24, 12, 12) == 2  # 6x6 patches of 12 px images upsampled to 24
    cnn = torch.nn.Conv2d(1, 2, 3)
    assert [cell_side(cnn, s, s, s) for s in (28, 32)] == [7, 8]  # the CPU ViT's patch for that side
    with pytest.raises(EvaluateError, match="3x3 patches .* of the 8x8 px images"):
        cell_side(tiny_vit(24, 8), 24, 8, 8)


def test_the_misaligned_grid_is_moved_half_a_cell_and_wraps_round():
    assert grid_offset("misaligned", 4) == 2 and grid_offset("misaligned", 7) == 3
    image = torch.full((1, 1, 12, 12), 255, dtype=torch.uint8)
    zero = fill_value("zero", [0.5])
    first = drop_cells(image, one_cell(9, 0), 4, 2, zero)[0, 0]
    expected = torch.zeros(12, 12, dtype=torch.bool)
    expected[2:6, 2:6] = True  # cell 0 of the grid moved 2 px right and down
    assert torch.equal(first == 0, expected)
    corner = drop_cells(image, one_cell(9, 8), 4, 2, zero)[
        0, 0
    ]  # the last cell: rows and columns 10, 11, 0, 1
    expected = torch.zeros(12, 12, dtype=torch.bool)
    for rows in (slice(10, 12), slice(0, 2)):
        for cols in (slice(10, 12), slice(0, 2)):
            expected[rows, cols] = True
    assert torch.equal(corner == 0, expected)
    assert int((corner == 0).sum()) == 16  # the same area as an aligned cell


def test_fills_are_exact_and_counts_round_half_up():
    mean = [0.5, 0.2, 0.286]  # x 255: 127.5 -> 128, 51, 72.93 -> 73
    assert fill_value("zero", mean).tolist() == [0, 0, 0]
    assert fill_value("mean", mean).tolist() == [128, 51, 73]
    image = torch.full((1, 3, 8, 8), 200, dtype=torch.uint8)
    out = drop_cells(image, one_cell(4, 1), 4, 0, fill_value("mean", mean))  # cell 1: rows 0-3, columns 4-7
    assert out.dtype == torch.uint8
    assert out[0, :, :4, 4:].flatten(1).unique(dim=1).flatten().tolist() == [128, 51, 73]
    assert out[0, :, 4:].eq(200).all() and out[0, :, :, :4].eq(200).all()
    assert [dropped_count(p, 16) for p in (0, 10, 50, 90)] == [0, 2, 8, 14]
    assert [dropped_count(p, 49) for p in (10, 50)] == [5, 25]  # 4.9 and 24.5


def test_an_identity_shuffle_gives_the_clean_image_and_a_swap_moves_whole_cells():
    image = torch.randint(0, 256, (2, 3, 12, 12), dtype=torch.uint8)
    identity = torch.arange(9).expand(2, 9)
    for offset in (0, 2):
        assert torch.equal(shuffle_cells(image, identity, 4, offset), image)
    strip = (
        torch.arange(12, dtype=torch.uint8).expand(1, 1, 4, 12).contiguous()
    )  # 4x12: three cells, pixel = column
    swap = torch.tensor([[0, 2, 1]])  # the second and third cells trade places
    assert shuffle_cells(strip, swap, 4, 0)[0, 0, 0].tolist() == [0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7]
    # Misaligned, the cells are columns 2-5, 6-9 and 10, 11, 0, 1.
    assert shuffle_cells(strip, swap, 4, 2)[0, 0, 0].tolist() == [8, 9, 2, 3, 4, 5, 10, 11, 0, 1, 6, 7]
    assert shuffle_cells(strip, swap, 4, 2)[0, 0].eq(shuffle_cells(strip, swap, 4, 2)[0, 0, :1]).all()


def blank_is_wrong(images: torch.Tensor) -> torch.Tensor:
    """Logits (N, 2): class 1 where no pixel is black, else class 0."""
    return torch.nn.functional.one_hot(images.flatten(1).amin(1).gt(0).long(), 2).float()


def test_hand_known_figures_and_the_same_seed_gives_the_same_figures():
    images = torch.full((6, 1, 8, 8), 255, dtype=torch.uint8)
    labels = torch.ones(6, dtype=torch.long)

    def figures(seed: int) -> dict[str, float]:
        return occlusion_figures(
            blank_is_wrong, images, labels, 4, [0.5], torch.Generator().manual_seed(seed)
        )

    found = figures(0)
    for grid in ("aligned", "misaligned"):
        assert found[f"occlusion_acc_{grid}_zero_0"] == 1 and found[f"occlusion_acc_{grid}_zero_0_std"] == 0
        # 4 cells: 10 % drops none (0.4 rounds to 0); from 20 % on a black cell makes every image wrong.
        assert found[f"occlusion_acc_{grid}_zero_10"] == 1
        assert all(found[f"occlusion_acc_{grid}_zero_{p}"] == 0 for p in range(20, 100, 10))
        assert all(found[f"occlusion_acc_{grid}_mean_{p}"] == 1 for p in range(0, 100, 10))  # grey 128
        assert found[f"shuffle_acc_{grid}"] == 1 and found[f"shuffle_acc_{grid}_std"] == 0
    assert len(found) == 2 * 2 * 10 * 2 + 4

    noisy = torch.randint(
        0, 256, (20, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    weights = torch.randn(64, 3, generator=torch.Generator().manual_seed(2))

    def linear(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).float() @ weights

    def noisy_figures(seed: int) -> dict[str, float]:
        labels = linear(noisy).argmax(-1)
        return occlusion_figures(linear, noisy, labels, 4, [0.3], torch.Generator().manual_seed(seed))

    assert noisy_figures(3) == noisy_figures(3)
    assert noisy_figures(3) != noisy_figures(4)


def test_the_part_writes_its_keys_with_the_clean_accuracy_at_0_percent_and_the_same_figures_again(
    run, monkeypatch, capsys
):
    from vitbench.data.datamodule import ImageDataModule
    from vitbench.evaluation import evaluate
    from vitbench.evaluation.context import Context
    from vitbench.evaluation.corruptions import stratified_subset

    monkeypatch.setattr(part, "IMAGES", 20)  # 2 images a class and 2 repeats: seconds, not a profile
    monkeypatch.setattr(part, "REPEATS", 2)
    assert evaluate.main([str(run), "--parts", "occlusion"]) == 0
    record = json.loads((run / "results.json").read_text())
    keys = record["evaluation"]["occlusion"]["keys"]
    assert len(keys) == 2 * 2 * 10 * 2 + 4 + 2
    assert all(CLASSIFICATION.metric(k) or CLASSIFICATION.is_family_key(k) for k in keys)
    assert record["occlusion_cell_px"] == 7 and record["occlusion_images"] == 20  # the ViT's 7 px patches
    assert all(0 <= record[k] <= 1 for k in keys if k.startswith(("occlusion_acc", "shuffle")))
    assert record["evaluation"]["occlusion"]["pictures"] == ["pictures/occlusion.png"]
    assert (run / "pictures" / "occlusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # 0 % dropped: the accuracy context.predict gives on the same subset, every grid and fill.
    classifier = evaluate.load_classifier(run)
    datamodule = ImageDataModule.from_hparams(classifier.data)
    datamodule.setup()
    context = Context(classifier, datamodule, torch.device("cpu"), 0, run)
    images, labels = context.test_split()
    chosen = stratified_subset(labels, 2, 0)
    clean = float((context.predict(images[chosen]).argmax(-1) == labels[chosen]).double().mean())
    for grid in ("aligned", "misaligned"):
        for fill in ("zero", "mean"):
            assert record[f"occlusion_acc_{grid}_{fill}_0"] == clean
            assert record[f"occlusion_acc_{grid}_{fill}_0_std"] == 0

    assert evaluate.main([str(run), "--parts", "occlusion", "--redo"]) == 0
    again = json.loads((run / "results.json").read_text())
    assert {k: again[k] for k in keys} == {k: record[k] for k in keys}
