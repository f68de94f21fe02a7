"""The demo's Snakemake report: generated from the demo run, opened in headless Chromium,
and every figure and table decoded there."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from conftest import snakemake

pytestmark = pytest.mark.workflow

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Appended to a copy of the report: once the app has rendered, decode every result the
# report embeds (images must load with a size, tables must hold rows) and leave a JSON
# summary in the DOM for --dump-dom.
PROBE = """<script>
setTimeout(async () => {
  const out = {app_text: document.querySelector('#app').innerText, results: {}};
  for (const [path, entry] of Object.entries(results)) {
    const r = {mime: entry.mime_type, caption: entry.caption.length};
    if (entry.mime_type.startsWith('image/')) {
      const img = new Image();
      await new Promise((ok) => { img.onload = ok; img.onerror = ok; img.src = entry.data_uri; });
      r.width = img.naturalWidth; r.height = img.naturalHeight;
    } else if (entry.mime_type === 'text/html') {
      const text = atob(entry.data_uri.split('base64,')[1]);
      r.rows = (text.match(/<tr/g) || []).length;
    }
    out.results[path] = r;
  }
  const pre = document.createElement('pre'); pre.id = 'icetrack-check';
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
}, 500);
</script>
"""


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: it is listed in tests/system_packages.txt (make test installs it)")
        pytest.skip("Debian package chromium not installed (see tests/system_packages.txt)")
    return exe


def render_in_chromium(report: Path, work: Path) -> dict:
    page = work / "probe.html"
    text = report.read_text()
    i = text.rindex("</body>")
    page.write_text(text[:i] + PROBE + text[i:])
    cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={work / 'chromium-profile'}", "--virtual-time-budget=15000",
           "--dump-dom", page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="icetrack-check">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"the report did not render in Chromium:\n{proc.stderr[-3000:]}"
    return json.loads(html.unescape(m.group(1)))


def test_report_opens_in_chromium_with_every_figure(demo_run, tmp_path):
    snakemake(demo_run, "--report", "report.html")
    report = demo_run / "report.html"
    assert report.stat().st_size > 100_000
    seen = render_in_chromium(report, tmp_path)
    for category in ("Velocity maps", "Quality", "Time series", "Tables"):
        assert category in seen["app_text"], seen["app_text"][:500]
    assert "feature tracking" in seen["app_text"]  # the workflow description
    pairs = pd.read_csv(demo_run / "results/demo/pairs.csv", dtype=str)["pair"]
    expected = [f"results/demo/{p}/{name}" for p in pairs for name in ("speed.png", "quality.png")]
    expected += ["results/demo/timeseries.png"]
    tables = ["results/demo/report/scenes.html", "results/demo/report/pairs.html", "results/demo/report/quality.html"]
    missing = set(expected + tables) - set(seen["results"])
    assert not missing, missing
    for path in expected:
        r = seen["results"][path]
        assert r["width"] > 300 and r["height"] > 300 and r["caption"] > 50, (path, r)
    for path in tables:
        assert seen["results"][path]["rows"] >= 2, (path, seen["results"][path])
