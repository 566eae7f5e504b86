"""The HTML timeline, loaded in real headless Chromium: no script errors, one ``.op`` bar per operation.

Needs the ``chromium`` binary (Debian package ``chromium``; ``.ci/install-browser`` installs it when it can);
where it is absent the browser tests skip and say so.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from wormspace.history import History, operations
from wormspace.refinement.linearizability import ILLEGAL, OK, CheckResult, check_history
from wormspace.refinement.models import simulate
from wormspace.refinement.timeline import render_html

DATA = Path(__file__).resolve().parent.parent / "data" / "histories"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (run .ci/install-browser as root to install it)"
)

# Injected first in <head>: every error or console.error lands in <html data-errors="...">.
ERROR_HOOK = """<script>
(function () {
  function note(text) {
    var el = document.documentElement;
    el.setAttribute('data-errors', (el.getAttribute('data-errors') || '') + text + '\\n');
  }
  window.onerror = function (message, source, line) { note('error: ' + message + ' at ' + line); };
  window.addEventListener('unhandledrejection', function (ev) { note('rejection: ' + ev.reason); });
  var original = console.error;
  console.error = function () { note('console.error: ' + Array.prototype.join.call(arguments, ' ')); };
  void original;
})();
</script>"""

# Injected last in <body>: click the first bar once the page's own script has set itself up.
CLICK_FIRST_BAR = """<script>
document.addEventListener('DOMContentLoaded', function () {
  var bar = document.querySelector('.op');
  if (bar) { bar.click(); }
});
</script>"""


class Elements(HTMLParser):
    """Collects (tag, attributes) of every start tag, and the text of #details."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.details = ""
        self.ticks: list[str] = []  # the text of each axis tick
        self._in_details = False
        self._in_tick = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.elements.append((tag, a))
        self._in_details = a.get("id") == "details"
        self._in_tick = "tick" in a.get("class", "").split()
        if self._in_tick:
            self.ticks.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_details = False
        self._in_tick = False

    def handle_data(self, data: str) -> None:
        if self._in_details:
            self.details += data
        if self._in_tick:
            self.ticks[-1] += data

    def with_class(self, name: str) -> list[dict[str, str]]:
        return [a for _, a in self.elements if name in a.get("class", "").split()]

    def attr(self, tag: str, name: str) -> str | None:
        for t, a in self.elements:
            if t == tag:
                return a.get(name)
        return None


def load(page: str, tmp_path: Path) -> tuple[Elements, str]:
    """Render ``page`` in headless Chromium; returns the parsed DOM after scripts ran, and its log."""
    instrumented = page.replace("<head>", "<head>" + ERROR_HOOK, 1).replace(
        "</body>", CLICK_FIRST_BAR + "</body>", 1
    )
    path = tmp_path / "timeline.html"
    path.write_text(instrumented, encoding="utf-8")
    assert CHROMIUM is not None
    proc = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
            "--virtual-time-budget=3000", "--dump-dom", path.as_uri(),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = Elements()
    dom.feed(proc.stdout)
    return dom, proc.stderr


def assert_clean(dom: Elements, log: str) -> None:
    assert dom.attr("html", "data-errors") in (None, ""), dom.attr("html", "data-errors")
    assert not re.search(r"Uncaught|SyntaxError|ReferenceError|TypeError", log), log[-2000:]
    assert dom.attr("body", "data-ready") == "1", "the page's script did not run to the end"


def ok_case() -> tuple[History, CheckResult]:
    history = simulate(random.Random(11), operations=60, addresses=4, processes=5, info_rate=0.05)
    result = check_history(history)
    assert result.verdict == OK
    return history, result


def test_page_is_self_contained() -> None:
    history, result = ok_case()
    page = render_html(history, result)
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    assert page.count('class="op ') == len(operations(history))


@needs_browser
def test_ok_history_renders_bars_and_linearization_points(tmp_path: Path) -> None:
    history, result = ok_case()
    dom, log = load(render_html(history, result), tmp_path)
    assert_clean(dom, log)
    bars = dom.with_class("op")
    assert len(bars) == len(operations(history))
    outcomes = {o: len(dom.with_class(o)) for o in ("ok", "fail", "info")}
    assert sum(outcomes.values()) == len(bars) and outcomes["ok"] > 0
    points = sum(len(p.order or ()) for p in result.partitions)
    assert len(dom.with_class("lin")) == points > 0
    assert not dom.with_class("offending")
    first = bars[0]
    assert "focus" in first["class"].split(), "clicking a bar should focus it"
    assert dom.details.strip() == first["title"]


@needs_browser
def test_illegal_history_highlights_the_minimal_sub_history(tmp_path: Path) -> None:
    history = History.read(DATA / "value-changed-after-read-bad.jsonl")
    result = check_history(history)
    assert result.verdict == ILLEGAL and result.minimal is not None
    page = render_html(history, result)
    dom, log = load(page, tmp_path)
    assert_clean(dom, log)
    assert len(dom.with_class("op")) == len(operations(history)) == 4
    offending = {a["data-op"] for a in dom.with_class("offending")}
    assert offending == {str(s.source.id) for s in result.minimal.operations}
    assert not dom.with_class("lin")
    assert "No order of these" in page and "must take effect before it returns" in page


def real_clock_case() -> tuple[History, CheckResult]:
    """Times as a real run records them (monotonic ns, far from zero): one write, one read after it."""
    t0 = 5_000_000_000_000
    history = History.read(
        "\n".join(
            [
                f'{{"process":0,"type":"invoke","f":"write","key":1,"value":"YQ==","time":{t0}}}',
                f'{{"process":0,"type":"ok","f":"write","key":1,"value":null,"time":{t0 + 27_784_476}}}',
                f'{{"process":1,"type":"invoke","f":"read","key":1,"value":null,"time":{t0 + 30_000_000}}}',
                f'{{"process":1,"type":"ok","f":"read","key":1,"value":"YQ==","time":{t0 + 31_500_000}}}',
            ]
        )
        + "\n"
    )
    return history, check_history(history)


def test_the_axis_reads_milliseconds_since_the_first_event() -> None:
    history, result = real_clock_case()
    dom = Elements()
    dom.feed(render_html(history, result))
    assert dom.ticks == ["0.00 ms", "31.50 ms"]  # one tick per 120 px: every third of the four steps
    assert [a["data-ns"] for a in dom.with_class("tick")] == ["5000000000000", "5000031500000"]
    assert "time 0.00 ms .. 27.78 ms (5000000000000 .. 5000027784476 ns)" in dom.with_class("op")[0]["title"]


@needs_browser
def test_the_axis_in_the_browser_shows_milliseconds(tmp_path: Path) -> None:
    history, result = real_clock_case()
    dom, log = load(render_html(history, result), tmp_path)
    assert_clean(dom, log)
    assert dom.ticks and all(re.fullmatch(r"\d+\.\d+ ms", t) for t in dom.ticks), dom.ticks
    assert "27784476" not in " ".join(dom.ticks)
