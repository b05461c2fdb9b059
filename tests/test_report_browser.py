"""``nsgsolve report`` in a real browser: headless Chromium opens the reports of the examples from file://,
runs their script, and the DOM it dumps must show the expected cells, one cell's detail with its witness,
and no script error. A screenshot is saved for a person to look at (the path is printed).

.ci/run installs Debian's chromium, so CI always runs this; elsewhere, without a Chromium, the tests are
skipped with the reason printed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest

from nsgsolve.cli import run

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no Chromium on PATH (Debian: apt-get install chromium); "
                                                           ".ci/run installs it, so CI runs these tests")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _report(tmp_path: Path, example: str, *extra: str) -> Path:
    out = tmp_path / (Path(example).stem + ".html")
    assert run(["report", example, "-o", str(out), *extra]) == 0
    return out


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    return subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args],
                          capture_output=True, text=True, timeout=120)


def _dom(tmp_path: Path, page: Path, fragment: str = "") -> str:
    got = _chromium(tmp_path, "--dump-dom", page.as_uri() + fragment)
    # Chromium prints page console messages as CONSOLE lines on stderr with --enable-logging.
    errors = [line for line in got.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not errors, errors
    assert 'data-ready="true"' in got.stdout, "the report's script did not run to its end"
    return got.stdout


def _cell(dom: str, index: int) -> str:
    m = re.search(rf'<td class="([^"]*)" data-cell="{index}"[^>]*>(.*?)</td>', dom)
    assert m, index
    return m.group(1) + ": " + unescape(re.sub("<[^>]+>", " ", m.group(2))).strip()


def _index(page: Path, row: str, col: str) -> int:
    import json

    text = page.read_text()
    data = json.loads(re.search(r'<script type="application/json" id="cells-data">(.*?)</script>', text, re.S)
                      .group(1).replace("<\\/", "</"))
    r = [x["name"] for x in data["rows"]].index(row)
    c = [x["name"] for x in data["columns"]].index(col)
    return r * len(data["columns"]) + c


@needs_browser
def test_three_tier_report_in_chromium(tmp_path):
    page = _report(tmp_path, "examples/three-tier.nsg")
    internet_web = _index(page, "Internet", "WebTier")
    dom = _dom(tmp_path, page, f"#cell={internet_web}")
    assert re.sub(r"\s+", " ", _cell(dom, internet_web)) == "v-some selected: some tcp 80,443"
    assert _cell(dom, _index(page, "Internet", "DbTier")).startswith("v-none: none")
    assert re.sub(r"\s+", " ", _cell(dom, _index(page, "prod/app", "db1"))) == "v-some: some tcp 1433"
    detail = re.search(r'<aside id="detail".*?</aside>', dom, re.S).group(0)
    assert "can Internet reach WebTier" in detail
    assert "Allowed, for example" in detail and "Blocked, for example" in detail
    assert re.search(r"ALLOW\s+Tcp \d+\.\d+\.\d+\.\d+ → 10\.10\.1\.[45] \(nic web[12]\) sport 49152 dport (80|443)",
                     unescape(detail)), detail
    assert 'href="#rule-web-nsg-Inbound-Allow-Web"' in detail  # the deciding rule links to the rule table
    assert 'id="rule-web-nsg-Inbound-Allow-Web"' in dom
    assert "DenyAllInBound" in dom  # rule tables include Azure's default rules
    assert "NSG002" in dom  # lint findings are on the page
    assert "no-web-to-db" in dom  # and the contract results
    shot = Path(os.environ.get("NSGSOLVE_ARTIFACTS", tmp_path)) / "report-three-tier.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    got = _chromium(tmp_path, "--window-size=1400,1800", f"--screenshot={shot}",
                    page.as_uri() + f"#cell={internet_web}")
    assert shot.exists() and shot.stat().st_size > 10_000, got.stderr[-2000:]
    print(f"\nscreenshot of the three-tier report: {shot}")


@needs_browser
def test_hub_spoke_and_diff_reports_in_chromium(tmp_path):
    page = _report(tmp_path, "examples/hub-spoke.nsg")
    dom = _dom(tmp_path, page)
    assert "<svg" in dom and "peering" in dom  # the topology draws the hub-spoke peerings
    text = Path("examples/three-tier.nsg").read_text()
    new = tmp_path / "new.nsg"
    new.write_text(text.replace("    200  allow Allow-SSH      tcp from Bastion to AppTier port 22\n",
                                "    200  allow Allow-SSH      tcp from Bastion to AppTier port 22\n"
                                "    210  allow Oops           tcp from Internet to AppTier port 3389\n", 1))
    out = tmp_path / "diff.html"
    assert run(["diff", "examples/three-tier.nsg", str(new), "--format", "html", "-o", str(out)]) == 0
    dom = _dom(tmp_path, out)
    cell = _cell(dom, _index(out, "Internet", "AppTier"))
    assert re.sub(r"\s+", " ", cell) == "d-opened: opens + tcp 3389"
    assert _cell(dom, _index(out, "Internet", "WebTier")).startswith("d-same")


def test_report_is_self_contained_and_static_content_needs_no_script(tmp_path):
    page = _report(tmp_path, "examples/three-tier.nsg").read_text()
    assert not re.search(r'(src|href)="(https?:)?//', page), "the report must not load anything from the network"
    without_script = re.sub(r"<script.*?</script>", "", page, flags=re.S)
    table = re.search(r'<table class="matrix">.*?</table>', without_script, re.S).group(0)
    assert '<th scope="col"' in table and '<th scope="row"' in table
    # Colour is paired with words: every cell names its verdict in text.
    cells = re.findall(r'<td class="v-(\w+)"[^>]*><span class="verdict">(\w+|n/a)</span>', table)
    assert cells and all(cls == word or (cls == "na" and word == "n/a") for cls, word in cells)


def test_matrix_svg(tmp_path):
    out = tmp_path / "m.svg"
    assert run(["report", "examples/webservers.nsg", "--matrix-format", "svg", "-o", str(out)]) == 0
    svg = out.read_text()
    import xml.etree.ElementTree as ET

    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    words = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "Internet" in words and {"all", "some", "none"} & set(words)
