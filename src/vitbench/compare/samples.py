"""The pictures of each group of a table, from its run with the lowest seed: a denoiser's sample
grid (samples.png), a classifier's test pictures (pictures/*.png, written by vitbench.classification.pictures)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vitbench.compare.table import DEFAULT, format_table, group_keys, group_members

SAMPLES_FILE = "samples.png"  # written by a denoising run: one row of generated images per class
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class SampleGrid:
    """One group's grid of generated images.

    Attributes:
        group: the group, as `group_label` names it ("jit model.prediction=eps").
        title: the group and its figures ("jit model.prediction=eps: FID (vitbench-CNN) 12.3 ± 0.4, ...").
        source: the run the grid comes from: the group's run with the lowest seed.
        png: the PNG file's bytes; None when the run has no readable samples.png (a W&B run, say).
    """

    group: str
    title: str
    source: str
    png: bytes | None


def group_label(shown_row: pd.Series, keys: list[str]) -> str:
    """ "jit", "jit model.prediction=eps": the model, then every other group key the group sets."""
    parts = [str(shown_row["model"])] if "model" in keys else []
    parts += [f"{k}={shown_row[k]}" for k in keys if k != "model" and shown_row[k] != DEFAULT]
    return " ".join(parts) or "all runs"


def read_png(path: Path) -> bytes | None:
    """The bytes of the PNG file at `path`, or None when it is missing or not a PNG."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data if data.startswith(PNG_SIGNATURE) else None


def first_run(members: pd.DataFrame) -> pd.Series:
    """The run of a group whose pictures represent it: the lowest seed (a run without one last)."""
    return members.sort_values("seed", kind="stable").iloc[0]


def representatives(
    df: pd.DataFrame, table: pd.DataFrame, task: str
) -> Iterator[tuple[pd.Series, str, pd.Series]]:
    """For each row of `table` (the `aggregate` of `task`) with a finished run, in its order: the
    row as `format_table` shows it, the group's `group_label`, and its `first_run`."""
    keys = group_keys(table)
    shown = format_table(table, task)
    for (_, row), members in zip(shown.iterrows(), group_members(df, table, task), strict=True):
        if not members.empty:
            yield row, group_label(row, keys), first_run(members)


def _seed_text(run: pd.Series, what: str) -> str:
    return f", {what} of seed {int(run['seed'])}" if pd.notna(run["seed"]) else ""


def sample_grids(df: pd.DataFrame, table: pd.DataFrame) -> list[SampleGrid]:
    """One `SampleGrid` per row of `table` (the denoising `aggregate` of `df`), in its order."""
    grids = []
    for row, group, first in representatives(df, table, "denoising"):
        title = (
            f"{group}: FID (vitbench-CNN) {row['FID (vitbench-CNN)']}, "
            f"sample acc {row['sample acc (%)']} %{_seed_text(first, 'samples')}"
        )
        png = read_png(Path(first["source"]) / SAMPLES_FILE)
        grids.append(SampleGrid(group, title, str(first["source"]), png))
    return grids


# A classifier run's pictures (its test's, vitbench.classification.pictures.TestPictures, then
# vitbench-evaluate's), in the order the report shows them.
CLASSIFIER_PICTURES = {
    "confusion_matrix": "confusion matrix",
    "misclassified": "most confident mistakes",
    "attention": "attention rollout",
    "reliability": "reliability diagram, raw and temperature-scaled (vitbench-evaluate)",
}


@dataclass
class PictureSet:
    """One group's test pictures.

    Attributes:
        group: the group, as `group_label` names it.
        title: the group, its test accuracy and the seed the pictures are of.
        source: the run the pictures come from.
        pngs: picture name (a `CLASSIFIER_PICTURES` key) -> PNG bytes, for those the run has.
    """

    group: str
    title: str
    source: str
    pngs: dict[str, bytes]


def picture_sets(df: pd.DataFrame, table: pd.DataFrame) -> list[PictureSet]:
    """One `PictureSet` per row of `table` (the classification `aggregate` of `df`), in its order."""
    sets = []
    for row, group, first in representatives(df, table, "classification"):
        pngs = {
            name: png
            for name in CLASSIFIER_PICTURES
            if (png := read_png(Path(first["source"]) / "pictures" / f"{name}.png")) is not None
        }
        title = f"{group}: test acc {row['test acc (%)']} %{_seed_text(first, 'pictures')}"
        sets.append(PictureSet(group, title, str(first["source"]), pngs))
    return sets
