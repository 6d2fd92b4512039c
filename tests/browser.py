"""Debian's headless Chromium for the tests that look at a page as a reader does (report.html, the
documentation site): a script added to a copy of the page writes what the browser saw into the DOM."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

# `make test-slow` installs it where apt is there (the Makefile's browser target).
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def seen_in_chromium(page: Path, probe: str, profile: Path) -> dict:
    """Open a copy of `page` with `probe` (a <script> that writes JSON into ``<pre id="probe">`` once
    the page has loaded) at a 1366 x 768 window; returns that JSON."""
    copy = page.with_name(page.stem + ".probe.html")
    copy.write_text(page.read_text().replace("</body>", probe + "\n</body>"))
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--no-first-run", "--disable-extensions",
         "--allow-file-access-from-files", f"--user-data-dir={profile}", "--window-size=1366,768",
         "--virtual-time-budget=10000", "--dump-dom", copy.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"{page}: the page's probe never ran: {proc.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"'))
