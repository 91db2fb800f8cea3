"""The report in a real browser (issue 19): headless Chromium opens it from disk with every network door shut,
and it must render every chart with no console error and no request beyond the file itself.

This is the one test allowed to skip: on a machine without Chromium (Debian's ``chromium`` package, which
``.ci/run`` installs before ``make test``) it says so. Playwright drives the system's Chromium; it downloads
no browser of its own.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ledger import Ledger
from tests.conftest import Clock
from tests.test_report import record

CHROMIUM = next((path for path in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if path and os.path.exists(path)), None)
# Flags that keep a headless Chromium off the network and quiet: no sandbox (containers run it as root), no GPU,
# no background services, and every host name resolving to nothing, so a stray request could not leave anyway.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-default-apps", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost"]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian's chromium package; .ci/run installs"
                    " it before make test), so the report cannot be rendered in a real browser here")
def test_the_report_renders_offline_in_chromium_with_every_chart_and_no_error(tmp_path: Path) -> None:
    from playwright.sync_api import ConsoleMessage, Request, sync_playwright

    with Ledger(tmp_path / "l.db", clock=Clock(step_ms=30 * 60_000)) as led:
        record(led)
        report = Path(led.report(tmp_path / "report.html", session="s01-a"))
    url = report.resolve().as_uri()
    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})

            def console(message: ConsoleMessage) -> None:
                if message.type in ("error", "warning"):
                    problems.append(f"console {message.type}: {message.text}")

            def request(sent: Request) -> None:
                requests.append(sent.url)

            page.on("console", console)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("request", request)
            page.goto(url, wait_until="load")
            charts = page.eval_on_selector_all(
                "figure.chart",
                "figures => figures.map(f => {const svg = f.querySelector('svg'); const box = svg.getBoundingClientRect();"
                " return [f.dataset.chart, svg.querySelectorAll('.mark').length, box.width, box.height,"
                " Array.from(svg.querySelectorAll('.mark')).filter(m => m.getBBox().width > 0 || m.getBBox().height > 0).length]})",
            )
            data = page.evaluate("JSON.parse(document.getElementById('report-data').textContent)")
            alerts = page.evaluate("document.querySelectorAll('script:not(#report-data)').length")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert alerts == 0 and data["session"] == "s01-a"  # hostile names stayed data, and the JSON parses
    assert requests == [url]  # the page itself, and nothing else
    names = {name for name, *_ in charts}
    assert names == {"activity", "sessions", "tokens", "cost", "lifecycle", "by_tool", "by_model", "by_user",
                     "by_status", "timeline", "lineage"}
    for name, marks, width, height, drawn in charts:
        assert marks > 0 and drawn > 0 and width > 100 and height > 50, (name, marks, drawn, width, height)
    assert (tmp_path / "report.png").stat().st_size > 10_000
