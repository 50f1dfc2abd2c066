"""The documentation site, built like `make docs` and driven in a real browser (apt's Chromium through Playwright).

Every page loads without console errors or failed requests, every internal link and image resolves, the diagrams
render, and the site's search finds a lab by an exam term. The site must build offline: a request to any other host
fails the test.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
                           cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert built.returncode == 0, built.stdout + built.stderr
    return out


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: `make chromium` installs it with apt"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def pages(site: Path) -> list[str]:
    return sorted(str(path.relative_to(site)) for path in site.rglob("*.html") if path.name != "404.html")


def test_every_page_loads_cleanly_and_its_links_and_images_resolve(site: Path, base_url: str, browser) -> None:
    checked: dict[str, int] = {}
    problems: list[str] = []
    context = browser.new_context()
    for relative in pages(site):
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda message, errors=errors: errors.append(message.text)
                if message.type == "error" else None)
        page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
        page.on("requestfailed", lambda request, errors=errors: errors.append(f"request failed: {request.url}"))
        page.on("response", lambda response, errors=errors: errors.append(f"{response.status}: {response.url}")
                if response.status >= 400 else None)
        url = urljoin(base_url, relative)
        page.goto(url, wait_until="networkidle")
        if errors:
            problems.append(f"{relative}: {errors}")
        foreign = [request for request in page.evaluate(
            "performance.getEntriesByType('resource').map(entry => entry.name)")
            if not request.startswith(base_url) and not request.startswith("data:")]
        if foreign:
            problems.append(f"{relative} loads from other hosts (the site must work offline): {foreign}")
        broken_images = page.evaluate(
            "[...document.images].filter(image => !image.complete || image.naturalWidth === 0).map(i => i.src)")
        if broken_images:
            problems.append(f"{relative}: images that did not render: {broken_images}")
        for href in page.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.href)"):
            target, _ = urldefrag(href)
            if not target.startswith(base_url) or target in checked:
                continue
            try:
                with urllib.request.urlopen(target, timeout=10) as response:  # noqa: S310 - our local server
                    checked[target] = response.status
            except urllib.error.HTTPError as error:
                checked[target] = error.code
            if checked[target] >= 400:
                problems.append(f"{relative}: link to {urlparse(target).path} answers {checked[target]}")
        page.close()
    context.close()
    assert not problems, "\n".join(problems)
    assert len(pages(site)) >= len(list((ROOT / "docs").rglob("*.md")))


def test_diagrams_render_on_their_page(site: Path, base_url: str, browser) -> None:
    committed = sorted(path.name for path in (ROOT / "docs" / "diagrams").glob("*.svg"))
    page = browser.new_page()
    page.goto(urljoin(base_url, "diagrams/"), wait_until="networkidle")
    rendered = page.evaluate(
        "[...document.images].filter(i => i.complete && i.naturalWidth > 100).map(i => i.src.split('/').pop())")
    page.close()
    assert committed and set(committed) <= set(rendered)


def test_search_finds_the_nacl_lab(base_url: str, browser) -> None:
    page = browser.new_page()
    page.goto(urljoin(base_url, "index.html"), wait_until="networkidle")
    page.click("input.md-search__input")
    page.locator("input.md-search__input").press_sequentially("NACL", delay=50)   # as a reader types it
    page.wait_for_selector(".md-search-result__item a", timeout=15_000)
    results = page.eval_on_selector_all(".md-search-result__item a", "links => links.map(link => link.href)")
    page.close()
    assert any(re.search(r"labs/02-security-groups-vs-nacls", href) for href in results), results
