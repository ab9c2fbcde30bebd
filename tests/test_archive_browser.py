"""The HTML archive in a real browser (Debian's chromium driven by Playwright), from file://.

An export of FakeVPSBG (plus a ticket whose message attacks the page and carries a real PNG)
is rendered once per module; each test opens pages and checks what a reader sees. Every test
also fails on any console error or uncaught exception. Screenshots go to ``artifacts/browser/``.
Without chromium the tests are skipped, with the command that installs it.
"""

from __future__ import annotations

import asyncio
import os
import struct
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import pytest

from vpsbg_support import AsyncClient
from vpsbg_support.archive import Archive, export_tickets
from vpsbg_support.archive.html import render_html
from vpsbg_support.testing import FakeVPSBG

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = "apt-get install -y chromium (as root) and pip install playwright"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "browser"
HOSTILE_SUBJECT = "Hostile markup in a message"
HOSTILE = (
    "<p>Before the attack.</p>"
    "<script>window.pwned = 'script'; alert('script')</script>"
    "<img src=\"missing.png\" onerror=\"window.pwned = 'onerror'; alert('onerror')\">"
    "<a href=\"javascript:window.pwned='link';alert('link')\">click me</a> "
    "<style>body, p, .message { display: none !important }</style>"
    '<img src="https://tracker.invalid/pixel.png" alt="remote pixel">'
    '<div style="display:none" onmouseover="alert(4)">Hidden by a style attribute.</div>'
    "<p>After the attack: still here.</p>"
)


def png(width: int = 64, height: int = 40) -> bytes:
    """A real (tiny, gradient) PNG, so a thumbnail has something to decode."""
    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 4, y * 6, 160)) for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def _export(folder: Path) -> int:
    """Export the fake, a hostile ticket included; reply to it and export again, so the
    archive holds two versions of it.

    Returns:
        The hostile ticket's id.
    """
    async with FakeVPSBG(seed=5, tickets=10, rate_limit=1_000_000) as fake:
        for ticket in fake.state.tickets:
            for message in ticket.messages:
                for attachment in message.attachments:
                    attachment.size = min(attachment.size, 4096)
        async with AsyncClient(fake.token, base_url=fake.url) as client:
            hostile = await client.tickets.create(
                department_id=2,
                subject=HOSTILE_SUBJECT,
                message=HOSTILE,
                attachments=[("screen shot #1.png", png(), "image/png")],
            )
            await export_tickets(client, folder)
            await client.tickets.reply(hostile.id, message="<p>We had a look: all <b>fine</b>.</p>")
            await export_tickets(client, folder)
    return hostile.id


class ExportedArchive(Archive):
    """The real archive of the export, and which of its tickets is the hostile one."""

    hostile_id: int


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExportedArchive]:
    folder = tmp_path_factory.mktemp("browser") / "archive"
    # On a thread of its own: Playwright's sync API keeps an event loop running on this one.
    with ThreadPoolExecutor(1) as pool:
        hostile_id = pool.submit(asyncio.run, _export(folder)).result()
    with ExportedArchive(folder) as exported:
        exported.hostile_id = hostile_id
        assert len(exported.history(hostile_id)) == 2
        render_html(exported)
        yield exported


def require_chromium(path: Path) -> None:
    """Skip (fail on CI) with the install command when chromium is missing."""
    if not path.exists():
        if os.environ.get("CI"):  # .ci/run installs it: a skip there would hide a broken CI
            pytest.fail(f"chromium is not installed: {INSTALL}")
        pytest.skip(f"chromium is not installed: {INSTALL}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_chromium(CHROMIUM)
    sync_api = pytest.importorskip("playwright.sync_api", reason=f"playwright missing: {INSTALL}")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; the test fails on any console error, uncaught exception or dialog, and
    on any request that leaves file:// (a remote image, a CDN)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    opened.on(
        "dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss())
    )
    opened.on(
        "request",
        lambda r: None if r.url.startswith("file://") else problems.append(f"request {r.url}"),
    )
    yield opened
    context.close()
    assert problems == []


class IndexPage:
    """The archive's index.html, as a reader uses it."""

    def __init__(self, page: Page, folder: Path) -> None:
        self.page = page
        self.url = (folder / "index.html").as_uri()

    def open(self) -> IndexPage:
        self.page.goto(self.url)
        self.page.wait_for_selector("#controls:not([hidden])")
        return self

    def visible_ids(self) -> list[int]:
        cells = self.page.locator("#tickets tbody tr:not([hidden]) td:first-child")
        return [int(text) for text in cells.all_inner_texts()]

    def column(self, index: int) -> list[str]:
        return self.page.locator(f"#tickets tbody tr td:nth-child({index + 1})").all_inner_texts()

    def sort(self, key: str) -> None:
        self.page.locator(f'th[data-key="{key}"] button').click()

    def filter(self, text: str) -> None:
        self.page.locator("#filter").fill(text)

    def status(self, value: str) -> None:
        self.page.locator("#status").select_option(value)

    def shown(self) -> int:
        return int(self.page.locator("#shown").inner_text())


class TicketPage:
    """A ticket's page."""

    def __init__(self, page: Page, folder: Path, ticket_id: int) -> None:
        self.page = page
        self.url = (folder / "html" / f"ticket-{ticket_id}.html").as_uri()

    def open(self) -> TicketPage:
        self.page.goto(self.url)
        return self

    def messages(self) -> list[str]:
        return self.page.locator(".thread > li").all_inner_texts()

    def authors(self) -> list[str]:
        return self.page.locator(".thread > li .who").all_inner_texts()


def local_targets(page: Page) -> list[str]:
    """Every URL the page links to or loads (resolved by the browser)."""
    urls: list[str] = page.evaluate(
        """() => [
            ...Array.from(document.querySelectorAll('a[href]'), a => a.href),
            ...Array.from(document.querySelectorAll('img[src], script[src]'), e => e.src),
            ...Array.from(document.querySelectorAll('link[href]'), l => l.href),
        ]"""
    )
    return urls


def assert_links_resolve(page: Page) -> int:
    targets = local_targets(page)
    for url in targets:
        parsed = urlparse(url)
        if parsed.scheme in ("https", "mailto"):
            continue
        assert parsed.scheme == "file", url
        assert Path(unquote(parsed.path)).is_file(), url
    return len(targets)


def shot(page: Page, name: str, **options: Any) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), **options)


def test_index_lists_and_links_every_ticket(page: Page, archive: ExportedArchive) -> None:
    index = IndexPage(page, archive.path).open()
    shot(page, "index.png")

    tickets = archive.tickets()
    assert index.visible_ids() == [t.id for t in tickets]
    assert index.shown() == len(tickets)
    for ticket in tickets:
        link = page.locator(f'a[href="html/ticket-{ticket.id}.html"]')
        assert link.inner_text() == ticket.subject
    assert assert_links_resolve(page) == len(tickets) + 3  # + tickets.csv, css, js


def test_sorting_by_any_column(page: Page, archive: ExportedArchive) -> None:
    index = IndexPage(page, archive.path).open()
    ids = [t.id for t in archive.tickets()]

    index.sort("id")
    assert index.visible_ids() == sorted(ids)
    index.sort("id")
    assert index.visible_ids() == sorted(ids, reverse=True)
    assert page.locator('th[data-key="id"]').get_attribute("aria-sort") == "descending"

    index.sort("messages")
    counts = [int(n) for n in index.column(7)]
    assert counts == sorted(counts) and len(set(counts)) > 1
    index.sort("subject")
    subjects = index.column(1)
    assert subjects == sorted(subjects, key=str.lower)
    index.sort("updated")
    updated = index.column(6)
    assert updated == sorted(updated)


def test_filtering_by_text_and_status(page: Page, archive: ExportedArchive) -> None:
    index = IndexPage(page, archive.path).open()
    tickets = archive.tickets()

    index.filter("hostile MARKUP")
    assert index.visible_ids() == [archive.hostile_id]  # type: ignore[attr-defined]
    assert index.shown() == 1

    index.filter("")
    index.status("resolved")
    resolved = [t.id for t in tickets if t.status == "resolved"]
    assert resolved and index.visible_ids() == resolved
    assert index.shown() == len(resolved)
    shot(page, "index-filtered.png")

    index.status("")
    assert index.shown() == len(tickets)


def test_each_ticket_page_shows_every_message_and_its_links_resolve(
    page: Page, archive: ExportedArchive
) -> None:
    checked = 0
    for ticket in archive.tickets():
        view = TicketPage(page, archive.path, ticket.id).open()
        messages = view.messages()
        assert len(messages) == len(ticket.messages)
        for shown, message in zip(messages, ticket.messages, strict=True):
            assert (message.content or "").split("<")[0][:20] in shown
        expected = ["CUSTOMER" if m.is_customer else "SUPPORT" for m in ticket.messages]
        assert [a.upper() for a in view.authors()] == expected
        checked += assert_links_resolve(page)
    assert checked > len(archive.tickets()) * 3


def test_images_show_as_thumbnails(page: Page, archive: ExportedArchive) -> None:
    hostile: int = archive.hostile_id
    TicketPage(page, archive.path, hostile).open()

    thumbnail = page.locator('.attachments img[alt="screen shot #1.png"]')
    thumbnail.scroll_into_view_if_needed()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle()
    )
    box = thumbnail.bounding_box()
    assert box is not None and 0 < box["width"] <= 192
    assert "(" in page.locator(".attachments .size").first.inner_text()


def test_a_hostile_message_runs_and_hides_nothing(page: Page, archive: ExportedArchive) -> None:
    hostile: int = archive.hostile_id
    view = TicketPage(page, archive.path, hostile).open()

    for text in ("Before the attack.", "After the attack: still here.", "Hidden by a style"):
        assert page.get_by_text(text).is_visible(), text
    page.get_by_text("click me").click()
    page.locator(".thread").hover()
    page.wait_for_timeout(100)  # give anything that was going to run the chance to
    assert page.url == view.url
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.evaluate("document.querySelectorAll('script, style, iframe').length") == 0
    assert page.evaluate("getComputedStyle(document.body).display") != "none"
    shot(page, "hostile-ticket.png", full_page=True)


def test_earlier_versions_are_reachable(page: Page, archive: ExportedArchive) -> None:
    hostile: int = archive.hostile_id
    view = TicketPage(page, archive.path, hostile).open()
    assert len(view.messages()) == 2

    page.locator(".versions a").first.click()

    assert "-v" in page.url and page.locator(".notice").is_visible()
    assert len(view.messages()) == 1
    page.get_by_role("link", name="The latest version").click()
    assert page.url == view.url


def test_print_stylesheet_gives_a_clean_transcript(page: Page, archive: ExportedArchive) -> None:
    ticket = next(t for t in archive.tickets() if len(t.messages) > 3)
    TicketPage(page, archive.path, ticket.id).open()
    assert page.locator("nav").is_visible()

    page.emulate_media(media="print")

    assert not page.locator("nav").is_visible()
    assert page.locator(".thread > li").first.is_visible()
    background = page.evaluate(
        "getComputedStyle(document.querySelector('.message')).backgroundColor"
    )
    assert background in ("rgba(0, 0, 0, 0)", "transparent")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.pdf(path=str(ARTIFACTS / f"ticket-{ticket.id}.pdf"))
    assert (ARTIFACTS / f"ticket-{ticket.id}.pdf").stat().st_size > 1000


def test_without_chromium_the_tests_say_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        require_chromium(tmp_path / "no-chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium"):
        require_chromium(tmp_path / "no-chromium")
