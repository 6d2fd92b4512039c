"""report.html as a browser shows it: Debian's Chromium, headless, loads the page of a study's
comparison; a script added to a copy of the page reports what the browser sees."""

from __future__ import annotations

import pytest
from fake_runs import STUDY_ACC, STUDY_SIZES, write_study

from browser import CHROMIUM, seen_in_chromium
from vitbench.compare import find_runs, load_records, write_report

# A browser start: in `make test-slow`, which installs chromium first (the Makefile's browser target).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium here: apt-get install chromium"),
]

# Runs once the page (and every image in it) has loaded; writes its findings into the DOM.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const table = document.querySelector("h2#classification + div table");
  const found = {
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    models: [...table.querySelectorAll("tbody tr")].map(r => r.cells[0].textContent),
    pageWidth: document.documentElement.scrollWidth,
    viewWidth: window.innerWidth,
  };
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
</script>"""


def test_every_image_loads_and_the_table_has_a_row_per_model_on_a_laptop_screen(tmp_path):
    root = tmp_path / "sweep"
    write_study(root)
    report = write_report(load_records(find_runs(root)), tmp_path / "report")["report_html"]
    seen = seen_in_chromium(report, PROBE, tmp_path / "profile")
    plots = 3 + 2  # the classification plots, test accuracy and its gap against the size
    pictures = 3 * 2 + 3 * 3  # per group of the table: the CNN's two, the ViT's three
    assert seen["images"] == plots + pictures
    assert seen["broken"] == []  # every image decoded: natural width > 0
    assert seen["models"] == [m for m in STUDY_ACC for _ in STUDY_SIZES]  # a row per model and size
    assert seen["pageWidth"] <= seen["viewWidth"]  # nothing wider than a 1366 px laptop screen
