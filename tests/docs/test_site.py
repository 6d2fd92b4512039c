"""The documentation site as a reader sees it: `mkdocs build --strict` (a broken link or a missing page
fails it), then Debian's headless Chromium opens every page the navigation lists and finds it filled
and every image in it decoded."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from browser import CHROMIUM, seen_in_chromium

ROOT = Path(__file__).resolve().parents[2]
MKDOCS = shutil.which("mkdocs", path=str(ROOT / ".venv" / "bin")) or shutil.which("mkdocs")
pytestmark = [
    pytest.mark.slow,  # the build alone takes about a minute (the API pages read every module)
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium here: apt-get install chromium"),
    pytest.mark.skipif(MKDOCS is None, reason="no mkdocs here: pip install -e '.[docs]'"),
]

# Runs once the page and its images have loaded; writes its findings into the DOM.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.querySelectorAll("article img")];
  const article = document.querySelector("article");
  const found = {
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute("src")),
    words: article ? article.innerText.split(/\\s+/).filter(Boolean).length : 0,
    title: document.title,
  };
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
</script>"""


class NavLinks(HTMLParser):
    """The hrefs of the site navigation's page links (Material's `md-nav__link` anchors)."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and "md-nav__link" in (attrs.get("class") or "") and attrs.get("href"):
            self.hrefs.append(attrs["href"])


def nav_pages(site: Path) -> list[Path]:
    """Every page the home page's navigation links to, as its index.html in the built site."""
    parser = NavLinks()
    parser.feed((site / "index.html").read_text())
    pages = []
    for href in parser.hrefs:
        path = href.split("#")[0]
        if re.match(r"[a-z]+:", path):
            continue  # an external link: none is expected, and none is followed
        page = (site / path).resolve()
        page = page / "index.html" if page.is_dir() else page
        if page not in pages:
            pages.append(page)
    return pages


def test_every_page_of_the_navigation_is_filled_and_its_images_load(tmp_path):
    site = tmp_path / "site"
    build = subprocess.run(
        [MKDOCS, "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, build.stderr[-3000:]
    pages = nav_pages(site)
    # Home, 10 guides, 4 reference pages, the API's index and 8 packages, the results index and 9 studies.
    assert len(pages) >= 33
    problems = {}
    for page in pages:
        seen = seen_in_chromium(page, PROBE, tmp_path / "profile")
        if seen["broken"] or seen["words"] < 40:
            problems[str(page.relative_to(site))] = seen
    assert problems == {}
