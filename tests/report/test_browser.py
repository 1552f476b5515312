"""The report in a real browser: headless Chromium renders it offline, its plots are in the DOM, no request
leaves the page, it fits a phone's width, and a phone-sized screenshot is a real picture.

Needs Debian's `chromium` (`make test` installs it where apt can). Where it is absent these tests SKIP and
say so in the summary (`-ra`): the page was then only checked statically.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from cdp import BASE_FLAGS, OFFLINE_FLAGS, Browser
from synthetic_run import make_run

from selbench.report.study import write_study_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_BROWSER = ("NO BROWSER CHECK OF THE REPORT: chromium is not installed (Debian package `chromium`; `make test` "
              "installs it where apt can). The page was only scanned statically.")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=NO_BROWSER)

# Attributes through which a page can make the browser fetch something (HTML and SVG).
URL_ATTRIBUTES = {"src", "href", "xlink:href", "srcset", "action", "formaction", "poster", "data", "background",
                  "cite", "ping", "manifest", "codebase", "longdesc", "lowsrc", "dynsrc", "archive", "icon"}
_CSS_URL = re.compile(r"url\(\s*['\"]?\s*([^'\")\s]*)", re.IGNORECASE)


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "link", "iframe", "object", "embed", "base", "frame", "applet", "audio", "video"):
            self.found.append(f"<{tag}>")
        if tag == "meta" and any(k == "http-equiv" and (v or "").lower() == "refresh" for k, v in attrs):
            self.found.append("<meta http-equiv=refresh>")
        self._in_style = tag == "style"
        for name, value in attrs:
            value = (value or "").strip()
            if name in URL_ATTRIBUTES and value and not value.startswith(("#", "data:")):
                self.found.append(f"{tag} {name}={value}")
            if name == "style":
                self._css(value)

    def handle_startendtag(self, tag, attrs) -> None:
        self.handle_starttag(tag, attrs)
        self._in_style = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self._css(data)

    def _css(self, css: str) -> None:
        if "@import" in css.lower():
            self.found.append("@import")
        self.found += [f"url({u})" for u in _CSS_URL.findall(css) if u and not u.startswith(("#", "data:"))]


def external_references(page: str) -> list[str]:
    """Everything in `page` that could make a browser fetch a resource (empty for a self-contained page).

    In-page references (`#id`) and `data:` URIs (matplotlib inlines the pixels of a heatmap that way) are
    part of the page, not requests."""
    parser = _References()
    parser.feed(page)
    parser.close()
    found = parser.found
    # Anything the parser might not see as an attribute (malformed markup): absolute URLs in src/href-like text.
    found += re.findall(r"""(?:src|href)\s*=\s*['"]?\s*(?:https?:)?//[^\s'">]+""", page, flags=re.IGNORECASE)
    return found


@pytest.fixture(scope="module")
def page_path(tmp_path_factory) -> Path:
    run = make_run(tmp_path_factory.mktemp("browser-study"))
    return Path(write_study_report(run)["html"])


def test_the_scan_catches_what_would_leave_the_page():
    planted = ['<img src="https://example.org/x.png">', '<svg><image xlink:href="http://e.org/i.png"/></svg>',
               '<div style="background:url(//e.org/b.png)"></div>', "<style>@import 'x.css';</style>",
               '<link rel="stylesheet" href="a.css">', "<script>fetch('/x')</script>",
               '<svg><use href="other.svg#m"/></svg>', "<style>p{background:url(x.png)}</style>"]
    for html in planted:
        assert external_references(f"<html><body>{html}</body></html>"), html
    inside = '<svg><use xlink:href="#m1"/><path clip-path="url(#c1)"/><image xlink:href="data:image/png;base64,AA"/></svg>'
    assert external_references(inside) == []


def test_the_report_references_nothing_outside_itself(page_path):
    assert external_references(page_path.read_text(encoding="utf-8")) == []


def _run(args: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *BASE_FLAGS, *OFFLINE_FLAGS, *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


@needs_chromium
def test_chromium_renders_the_verdict_and_the_plots(page_path, tmp_path):
    done = _run([f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page_path.as_uri()])
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    verdict = dom[dom.index('<section id="verdict">'):]
    verdict = verdict[: verdict.index("</section>")]
    assert "<table>" in verdict and "beats random" in verdict and "Δ vs random" in verdict
    assert len(re.findall(r"<svg\b", dom)) >= 3
    assert dom.index('<section id="verdict">') < dom.index("<svg")  # the verdict before any figure


@needs_chromium
def test_no_request_leaves_the_page_and_it_fits_a_phone(page_path, tmp_path):
    page = page_path.read_text(encoding="utf-8")
    # Without its Content-Security-Policy the page could fetch freely: it must still ask for nothing but itself.
    open_copy = tmp_path / "no-csp.html"
    open_copy.write_text(re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page), encoding="utf-8")
    assert "Content-Security-Policy" not in open_copy.read_text(encoding="utf-8")
    for path, profile in ((open_copy, "a"), (page_path, "b")):
        browser = Browser(CHROMIUM, tmp_path / profile)
        try:
            browser.open(path.as_uri())
            fetched = [u for u in browser.requests() if not u.startswith("data:")]
            assert fetched == [path.as_uri()], fetched
            blocked = [m for m in browser.console() if "Content Security Policy" in m or "Refused" in m]
            assert blocked == [], blocked
            assert browser.evaluate("document.querySelector('section').id") == "verdict"
            assert browser.evaluate("document.querySelectorAll('section#verdict table').length") >= 1
            assert browser.evaluate("document.querySelectorAll('svg.plot').length") >= 3
            rendered = browser.evaluate("[...document.querySelectorAll('svg.plot')]"
                                        ".filter(s => s.getBoundingClientRect().width > 300).length")
            assert rendered >= 3, "plots are drawn across the phone's width"
            # Phone-ready: the page itself never scrolls sideways; wide tables scroll inside their boxes.
            assert browser.evaluate("document.documentElement.scrollWidth") <= 390
            assert browser.evaluate("[...document.querySelectorAll('.scroll')].some(d => d.scrollWidth > d.clientWidth)")
        finally:
            browser.close()


@needs_chromium
def test_phone_screenshot_is_a_real_picture(page_path, tmp_path):
    from PIL import Image

    shot = tmp_path / "phone.png"
    done = _run([f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=390,844",
                 page_path.as_uri()])
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    with Image.open(shot) as image:
        assert image.size == (390, 844)
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50, "a blank or flat screenshot"
    # The top of the page on a phone shows the caveats banner's orange and the headline's blue rule.
    rgb = {c for _, c in colors}
    assert any(r > 200 and 100 < g < 160 and b < 40 for r, g, b in rgb), "the caveats banner is on screen"


@needs_chromium
def test_the_request_log_catches_a_page_that_fetches(tmp_path):
    leaky = tmp_path / "leaky.html"
    leaky.write_text('<!doctype html><html><body><img src="http://example.invalid/x.png">'
                     '<div style="background:url(https://example.invalid/b.png)">x</div></body></html>')
    browser = Browser(CHROMIUM, tmp_path / "profile")
    try:
        browser.open(leaky.as_uri())
        fetched = [u for u in browser.requests() if not u.startswith("data:")]
    finally:
        browser.close()
    assert "http://example.invalid/x.png" in fetched and "https://example.invalid/b.png" in fetched
