"""report.html in a real headless Chromium: it renders its tables and figures, prints,
and makes no network request.

Chromium (Debian's ``chromium``; ``.ci/run`` installs it where missing) is driven over
the DevTools protocol (CDP) with a small synchronous websocket client. Two independent
witnesses of "no request": the CDP Network domain must report only ``file:`` and
``data:`` URLs, and a counting proxy on 127.0.0.1, through which Chromium is told to
send every non-loopback request, must see no connection at all.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg
import pytest
from websockets.sync.client import connect

from sscjak.coordinator.cli import main as coordinator_main
from sscjak.coordinator.report.write_report import write_report
from sscjak.coordinator.synthetic.demo_bundle import bundled_demo_folder

DEMO_CENTRES = sorted(bundled_demo_folder().glob("centre_*"))

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Chromium's own background traffic (network time, component updates, account
    # checks, safe browsing) goes through the proxy too; switch it off so that the
    # proxy counts the page's requests only.
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-client-side-phishing-detection",
    "--disable-domain-reliability",
    "--no-pings",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--safebrowsing-disable-auto-update",
    "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,"
    "AutofillServerCommunication,Translate,CertificateTransparencyComponentUpdater,"
    "InterestFeedContentSuggestions,PrivacySandboxSettings4",
    "--disable-component-extensions-with-background-pages",
    "--component-updater=url-source=http://127.0.0.1:9/",
    "--gaia-url=http://127.0.0.1:9/",
    "--google-apis-url=http://127.0.0.1:9/",
    "--lso-url=http://127.0.0.1:9/",
)
WINDOW = (1280, 1600)
TIMEOUT_S = 60.0
#: A4 (210 mm) less the report's 2 × 12 mm @page margins, in CSS pixels (96 per inch).
PRINT_WIDTH_PX = round((210 - 24) / 25.4 * 96)

pytestmark = pytest.mark.integration


def chromium_path() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found is None:
        pytest.fail("Debian's chromium is needed: apt-get install -y chromium (.ci/run does)")
    return found


class CountingProxy:
    """A TCP listener on 127.0.0.1 that records and refuses every connection made to it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(1.0)
                try:
                    self.requests.append(connection.recv(512))
                except OSError:
                    self.requests.append(b"")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.close()


class DevTools:
    """A minimal CDP client: commands on one page session, events collected."""

    def __init__(self, websocket: Any) -> None:
        self.socket = websocket
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        message_id = next(self.ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if self.session is not None:
            message["sessionId"] = self.session
        self.socket.send(json.dumps(message))
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            reply = json.loads(self.socket.recv(timeout=TIMEOUT_S))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)
        raise TimeoutError(method)

    def wait_for(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S
        for event in self.events:
            if event.get("method") == method:
                return event
        while time.monotonic() < deadline:
            event = json.loads(self.socket.recv(timeout=TIMEOUT_S))
            self.events.append(event)
            if event.get("method") == method:
                return event
        raise TimeoutError(method)


def start_chromium(user_data: Path, proxy_port: int) -> tuple[subprocess.Popen, str]:
    """Start headless Chromium with a DevTools port; return it and its browser ws URL."""
    process = subprocess.Popen(
        [
            chromium_path(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={user_data}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--proxy-server=http://127.0.0.1:{proxy_port}",
            "--proxy-bypass-list=<-loopback>",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    port_file = user_data / "DevToolsActivePort"
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if port_file.exists():
            lines = port_file.read_text().split()
            if len(lines) >= 2:
                return process, f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        if process.poll() is not None:
            pytest.fail(f"chromium exited with code {process.returncode} before DevTools opened")
        time.sleep(0.1)
    stop(process)
    pytest.fail("chromium did not open its DevTools port")


def stop(process: subprocess.Popen) -> None:
    """End the Chromium we started (its own process group) and wait for it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    folder = tmp_path_factory.mktemp("browser")
    args = ["simulate", *map(str, DEMO_CENTRES), "--out", str(folder / "results.json")]
    assert coordinator_main(args) == 0
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    return results, write_report(results, folder / "report").html


PAGE_FACTS = """(() => {
  const images = Array.from(document.images);
  const followup = document.getElementById('followup_months');
  const data = (name) => followup && followup.getAttribute(name)
    ? JSON.parse(followup.getAttribute(name)) : null;
  return {
    followupBars: data('data-bars'),
    followupXLimits: data('data-x-limits'),
    followupImageDrawn: !!(followup && followup.querySelector('img')
      && followup.querySelector('img').naturalWidth > 100),
    tables: document.querySelectorAll('table').length,
    rows: document.querySelectorAll('tbody tr').length,
    images: images.length,
    imagesDrawn: images.filter(i => i.complete && i.naturalWidth > 100).length,
    widestTable: Math.max(...Array.from(document.querySelectorAll('table'))
                             .map(t => t.scrollWidth)),
    pageWidth: document.documentElement.clientWidth,
    title: document.title,
    text: document.body.innerText,
  };
})()"""


@dataclass
class PageVisit:
    """What Chromium did with one page: its facts, requests, screenshot and PDF."""

    facts: dict[str, Any]
    printed_facts: dict[str, Any]
    page_requests: list[str]
    proxy_requests: list[bytes]
    screenshot_png: bytes
    pdf: bytes


def visit(page: Path, profile: Path) -> PageVisit:
    """Open ``page`` in a fresh headless Chromium; record everything the tests check."""
    proxy = CountingProxy()
    process, browser_url = start_chromium(profile, proxy.port)
    try:
        with connect(browser_url, max_size=None, open_timeout=TIMEOUT_S) as websocket:
            devtools = DevTools(websocket)
            target = devtools.send("Target.createTarget", {"url": "about:blank"})
            attached = devtools.send(
                "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
            )
            devtools.session = attached["sessionId"]
            devtools.send("Network.enable")
            devtools.send("Page.enable")
            devtools.send("Page.navigate", {"url": page.as_uri()})
            devtools.wait_for("Page.loadEventFired")
            facts = devtools.send(
                "Runtime.evaluate", {"expression": PAGE_FACTS, "returnByValue": True}
            )["result"]["value"]
            shot = devtools.send(
                "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
            )
            pdf = devtools.send("Page.printToPDF", {"printBackground": False})
            # As printed: print styles on a page as wide as A4 less its margins.
            devtools.send("Emulation.setEmulatedMedia", {"media": "print"})
            devtools.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": PRINT_WIDTH_PX, "height": 1100, "deviceScaleFactor": 1, "mobile": False},
            )
            printed = devtools.send(
                "Runtime.evaluate", {"expression": PAGE_FACTS, "returnByValue": True}
            )["result"]["value"]
            # Give any late request (a lazy image, a font) time to show itself.
            time.sleep(1.0)
            devtools.send("Runtime.evaluate", {"expression": "1"})
    finally:
        stop(process)
        proxy.close()
    return PageVisit(
        facts=facts,
        printed_facts=printed,
        page_requests=[
            event["params"]["request"]["url"]
            for event in devtools.events
            if event.get("method") == "Network.requestWillBeSent"
        ],
        proxy_requests=list(proxy.requests),
        screenshot_png=base64.b64decode(shot["data"]),
        pdf=base64.b64decode(pdf["data"]),
    )


def test_the_witnesses_see_a_request_when_a_page_makes_one(tmp_path: Path) -> None:
    # Negative control: a page without the report's CSP that loads an outside image
    # (TEST-NET-3 address, RFC 5737) must show up in both CDP and the proxy.
    page = tmp_path / "leaky.html"
    page.write_text(
        "<!DOCTYPE html><html><body><p>leak</p>"
        '<img src="http://203.0.113.7/pixel.png"></body></html>'
    )
    seen = visit(page, tmp_path / "profile")
    assert "http://203.0.113.7/pixel.png" in seen.page_requests
    assert any(b"203.0.113.7" in request for request in seen.proxy_requests)


def test_report_renders_in_chromium_without_any_network_request(report_html, tmp_path: Path):
    results, html = report_html
    seen = visit(html, tmp_path / "profile")
    facts = seen.facts

    # The page rendered its tables and every embedded figure (a distribution of a single
    # bar is text, not an image).
    assert facts["tables"] == 5
    assert facts["rows"] >= len(results["changes"]) + len(results["safety"])
    figures = len(list((html.parent / "figures").glob("*.png")))
    assert facts["images"] == facts["imagesDrawn"] == figures
    assert facts["widestTable"] <= facts["pageWidth"], "a table is wider than the page"
    printed = seen.printed_facts
    assert printed["pageWidth"] <= PRINT_WIDTH_PX  # less a scrollbar, if any
    assert printed["widestTable"] <= printed["pageWidth"], "a table is cut when printed"
    assert "Table 2. Change from baseline" in facts["text"]
    assert results["plan_sha256"] in facts["text"]

    # No request left the file: CDP saw only file: and data: URLs; the proxy saw nothing.
    requests = seen.page_requests
    assert requests, "the Network domain must have seen the page load itself"
    assert {url.split(":", 1)[0] for url in requests} <= {"file", "data"}, requests
    assert seen.proxy_requests == [], [r.split(b"\r\n")[0][:90] for r in seen.proxy_requests]

    # A real, non-blank screenshot of the whole page.
    png = seen.screenshot_png
    screenshot = tmp_path / "report-screenshot.png"
    screenshot.write_bytes(png)
    pixels = mpimg.imread(io.BytesIO(png), format="png")
    assert pixels.shape[1] >= WINDOW[0] - 20 and pixels.shape[0] > WINDOW[1]
    assert pixels[..., :3].std() > 0.05, "screenshot is blank"

    # And it prints: a PDF of several A4 pages.
    document = seen.pdf
    assert document.startswith(b"%PDF-")
    assert document.count(b"/Type /Page") - document.count(b"/Type /Pages") >= 2


def test_followup_figure_in_chromium_draws_the_released_bins_from_zero(report_html, tmp_path):
    """The follow-up figure as the rendered page carries it: the bars read back from the
    drawn axes (``data-bars``) are the released bins of results.json, the x-axis starts
    at 0 or above, and the image itself is drawn."""
    results, html = report_html
    facts = visit(html, tmp_path / "profile").facts
    released = results["distributions"]["followup_months"]
    bars, limits = facts["followupBars"], facts["followupXLimits"]
    assert facts["followupImageDrawn"]
    assert bars and limits, "the follow-up figure must carry its drawn bars and axis range"
    ((_, x_min, x_max),) = limits
    assert x_min >= 0
    assert (x_min, x_max) == (released[0][0], released[-1][1])
    # One bar per released bin, each holding that bin's patients (from the bar's area).
    assert [count for *_, count in bars] == [count for *_, count in released]
    assert all(count >= results["plan"]["min_cell"] for *_, count in bars)
    assert bars[0][1] == released[0][0] and bars[-1][2] == released[-1][1]
    for (_, left, right, _), (low, high, _) in zip(bars, released, strict=True):
        assert left <= low <= high <= right
    for (_, _, right, _), (_, left, _, _) in itertools.pairwise(bars):
        assert right == pytest.approx(left)
