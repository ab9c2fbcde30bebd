"""The HTML archive and tickets.csv, rendered from an archive: content, safety, incremental
re-runs, atomic writes and symlinks, the CSV's encoding and formula guard, HTML as text."""

from __future__ import annotations

import csv
import io
import os
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests._archive_standin import ARCHIVED_AT, StandInArchive
from tests.conftest import example
from vpsbg_support.archive import _sanitize
from vpsbg_support.archive._htmltext import html_to_text
from vpsbg_support.archive.csv_index import csv_bytes, neutralize_formula
from vpsbg_support.archive.html import render_html
from vpsbg_support.errors import ExportError

HOSTILE = (
    "<p>Before the attack.</p>"
    "<script>window.pwned = 1; alert('script')</script>"
    '<img src="x.png" onerror="window.pwned = 2">'
    '<a href="javascript:window.pwned=3">click me</a> '
    '<a href="JaVaScRiPt&colon;alert(1)">an encoded one</a> '
    '<a href="../../../etc/passwd">a local file</a> '
    '<a href="https://vpsbg.eu/help">the help page</a>'
    "<style>body, p { display: none !important }</style>"
    '<img src="https://tracker.example/pixel.png" alt="remote pixel">'
    '<div style="display:none" onmouseover="alert(4)">Hidden by a style attribute.</div>'
    '<iframe src="https://evil.example/"></iframe>'
    "<p>After the attack: still here.</p>"
)


def ticket_body(ticket_id: int = 216, **changes: Any) -> dict[str, Any]:
    body = example("ticket_get_example_drifted.json")
    body["id"] = ticket_id
    body.update(changes)
    return body


@pytest.fixture
def archive(tmp_path: Path) -> StandInArchive:
    folder = tmp_path / "archive"
    folder.mkdir()
    store = StandInArchive(folder)
    ticket = store.add(ticket_body())
    store.add_file(216, ticket.messages[0].attachments[0], b"\x89PNG fake image bytes")
    return store


def page(archive: StandInArchive, ticket_id: int, version: int | None = None) -> str:
    name = f"ticket-{ticket_id}" + (f"-v{version}" if version else "") + ".html"
    return (archive.path / "html" / name).read_text(encoding="utf-8")


def test_index_lists_every_ticket_with_its_counts(archive: StandInArchive) -> None:
    archive.add(ticket_body(217, subject="Second <ticket>", status="resolved", messages=[]))

    summary = render_html(archive)

    index = summary.index.read_text(encoding="utf-8")
    assert summary.tickets == 2 and summary.pages_written == 2
    assert 'href="html/ticket-216.html">Server misbehaves</a>' in index
    assert 'href="html/ticket-217.html">Second &lt;ticket&gt;</a>' in index
    row = re.search(r"<tr[^>]*>.*?216.*?</tr>", index, re.DOTALL)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0))
    assert cells[2:5] == [
        '<span class="status">opened</span>',
        "tech-support",
        "ubuntu-16gb - 87.120.8.29",
    ]
    assert "2024-08-02T11:57:57Z" in cells[5] and "2024-08-02T12:02:18Z" in cells[6]
    assert cells[7:] == ["2", "4"]  # two messages, two attachments each
    assert '<script src="html/static/archive.js" defer></script>' in index
    assert (archive.path / "html" / "static" / "archive.js").is_file()


def test_ticket_page_shows_the_thread_files_and_dates(archive: StandInArchive) -> None:
    render_html(archive)

    text = page(archive, 216)
    assert text.count('<li class="message support"') == 2
    assert "Example reply message." in text
    # The archived file is linked with its size and shown as a thumbnail; the other is not
    # in the archive and says so.
    href = "../attachments/216/5-first_attachment.png"
    assert f'<a class="file" href="{href}">first_attachment.png</a>' in text
    assert f'<img src="{href}" alt="first_attachment.png"' in text
    assert "(21 bytes)" in text
    assert 'second_attachment.png <span class="size">(1.2 KiB, 1,242 bytes; not archived)' in text
    assert '<time datetime="2026-11-30T12:00:00Z">' in text  # archived at, with zone
    assert '<a href="../index.html">' in text


def test_customer_and_support_messages_are_apart(tmp_path: Path) -> None:
    store = StandInArchive(tmp_path)
    body = example("ticket_create_example.json")
    body["messages"] += [{"content": "We are on it.", "is_customer": False}, {"content": "?!"}]
    store.add(body)

    render_html(store)

    classes = re.findall(r'<li class="message (\w+)"', page(store, 216))
    labels = re.findall(r'<span class="who">(\w+|\?)</span>', page(store, 216))
    assert classes == ["customer", "support", "unknown"]
    assert labels == ["Customer", "Support", "?"]


def test_every_page_carries_a_strict_csp(archive: StandInArchive) -> None:
    archive.add(ticket_body(subject="Second version"))
    render_html(archive)

    pages = [archive.path / "index.html", *(archive.path / "html").glob("*.html")]
    assert len(pages) == 3
    for path in pages:
        csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', path.read_text())
        assert csp is not None, path
        policy = csp.group(1)
        assert "default-src 'none'" in policy and "unsafe" not in policy
        assert "base-uri 'none'" in policy and "form-action 'none'" in policy
        scripts = "script-src 'self'" if path.name == "index.html" else "script-src"
        assert (scripts in policy) == (path.name == "index.html")


def test_a_hostile_message_is_made_inert(archive: StandInArchive) -> None:
    archive.add(ticket_body(messages=[{"id": 1, "content": HOSTILE, "is_customer": True}]))

    render_html(archive)

    text = page(archive, 216)
    body = text[text.index('<div class="body">') : text.index("</article>")]
    for forbidden in ("<script", "onerror", "onmouseover", "javascript", "<style", "style=",
                      "<iframe", "tracker.example", "etc/passwd", "x.png"):  # fmt: skip
        assert forbidden not in body.lower(), forbidden
    assert "Before the attack." in body and "After the attack: still here." in body
    assert "Hidden by a style attribute." in body
    assert '<a href="https://vpsbg.eu/help" rel="noopener noreferrer nofollow">' in body


def test_plain_text_messages_keep_their_line_breaks_and_escape_markup(tmp_path: Path) -> None:
    store = StandInArchive(tmp_path)
    store.add(ticket_body(messages=[{"content": "Line one\nLine two: 2 < 3 & 4 > 1"}]))

    render_html(store)

    assert "Line one<br>\nLine two: 2 &lt; 3 &amp; 4 &gt; 1" in page(store, 216)


def test_earlier_versions_are_reachable(archive: StandInArchive) -> None:
    later = ARCHIVED_AT + timedelta(days=1)
    archive.add(ticket_body(subject="Server fixed", status="resolved"), fetched_at=later)

    render_html(archive)

    latest = page(archive, 216)
    assert "Server fixed" in latest and "Earlier versions (1)" in latest
    assert '<a href="ticket-216-v1.html">Archived' in latest
    earlier = page(archive, 216, version=1)
    assert "Server misbehaves" in earlier and "An earlier version of this ticket" in earlier
    assert '<a href="ticket-216.html">The latest version</a>' in earlier


def test_a_rerun_rewrites_only_the_pages_of_changed_tickets(tmp_path: Path) -> None:
    store = StandInArchive(tmp_path)
    for ticket_id in range(1, 21):
        store.add(ticket_body(ticket_id))
    first = render_html(store)
    pages = tmp_path / "html"
    before = {p.name: p.stat().st_ino for p in pages.glob("*.html")}

    again = render_html(store)
    store.add(ticket_body(7, status="resolved"))  # a new version of ticket 7
    changed = render_html(store)

    assert (first.pages_written, first.pages_unchanged) == (20, 0)
    assert (again.pages_written, again.pages_unchanged) == (0, 20)
    assert (changed.pages_written, changed.pages_unchanged) == (2, 19)  # page 7 and its v7
    after = {p.name: p.stat().st_ino for p in pages.glob("*.html")}
    rewritten = {name for name in before if after[name] != before[name]}
    assert rewritten == {"ticket-7.html"}
    assert set(after) - set(before) == {"ticket-7-v7.html"}
    assert "resolved" in (tmp_path / "index.html").read_text()


def test_a_newly_archived_file_rewrites_its_ticket_page(archive: StandInArchive) -> None:
    render_html(archive)
    attachment = archive.ticket(216).messages[0].attachments[1]
    archive.add_file(216, attachment, b"second")

    summary = render_html(archive)

    assert summary.pages_written == 1
    assert 'href="../attachments/216/6-second_attachment.png"' in page(archive, 216)


def test_a_page_is_replaced_not_written_through_a_symlink(
    archive: StandInArchive, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.html"
    outside.write_text("keep me")
    (archive.path / "html").mkdir()
    os.symlink(outside, archive.path / "html" / "ticket-216.html")
    os.symlink(outside, archive.path / "index.html")

    render_html(archive)

    assert outside.read_text() == "keep me"
    assert not (archive.path / "html" / "ticket-216.html").is_symlink()
    assert not (archive.path / "index.html").is_symlink()
    assert "Server misbehaves" in page(archive, 216)


def test_a_symlinked_pages_folder_is_refused(archive: StandInArchive, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, archive.path / "html")

    with pytest.raises(ExportError, match="symbolic link"):
        render_html(archive)

    assert list(elsewhere.iterdir()) == []


def test_a_page_that_cannot_be_written_names_itself_and_leaves_no_temporary_file(
    tmp_path: Path,
) -> None:
    store = StandInArchive(tmp_path)
    for ticket_id in range(1, 6):
        store.add(ticket_body(ticket_id))
    (tmp_path / "html" / "ticket-3.html").mkdir(parents=True)  # a folder where a page goes

    with pytest.raises(ExportError, match=r"ticket-3\.html"):
        render_html(store)

    assert [p.name for p in (tmp_path / "html").iterdir() if p.name.endswith(".part")] == []


def test_a_file_outside_the_folder_is_never_linked(archive: StandInArchive) -> None:
    stored = archive.attachments()[0]
    archive._files[(216, 5)] = attrs.evolve(stored, path="../../etc/passwd")

    render_html(archive)

    text = page(archive, 216)
    assert "etc/passwd" not in text
    assert 'first_attachment.png <span class="size">(1.4 KiB, 1,426 bytes; not archived)' in text


def test_without_nh3_it_says_how_to_install_it(
    archive: StandInArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "nh3", None)
    monkeypatch.setattr(_sanitize, "_cleaner", None)

    with pytest.raises(ImportError, match=re.escape("pip install 'vpsbg-support[html]'")):
        render_html(archive)

    assert not (archive.path / "index.html").exists()


def test_csv_is_utf8_with_bom_one_row_per_ticket(archive: StandInArchive) -> None:
    archive.add(
        ticket_body(
            217,
            subject="Сървърът не отговаря",
            messages=[{"content": "<p>Здравейте,</p><p>the <b>server</b> is down &amp; out</p>"}],
        )
    )

    summary = render_html(archive)

    data = summary.csv.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and data.count(b"\r\n") == 3
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert [row["id"] for row in rows] == ["216", "217"]
    assert rows[1]["subject"] == "Сървърът не отговаря"
    assert rows[1]["first_message"] == "Здравейте,\n\nthe server is down & out"
    assert rows[0]["messages"] == "2" and rows[0]["attachments"] == "4"
    assert rows[0]["created_at"] == "2024-08-02T11:57:57Z"
    assert rows[0]["service_id"] == "2747" and rows[0]["service_type"] == "server"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cells_never_start_a_formula(start: str, tmp_path: Path) -> None:
    store = StandInArchive(tmp_path)
    evil = f'{start}HYPERLINK("https://evil.example","click")'
    store.add(ticket_body(subject=evil, messages=[{"content": evil}]))

    rows = list(csv.reader(io.StringIO(csv_bytes(store.tickets()).decode("utf-8-sig"))))

    assert rows[1][1] == "'" + evil
    # The first message, as plain text, loses its leading blank space; what is left is guarded.
    assert rows[1][-1] == (evil.strip() if start.isspace() else "'" + evil)
    assert neutralize_formula("plain") == "plain"


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("Plain text\nkept as is  ", "Plain text\nkept as is"),
        ("<p>One</p><p>Two<br>three</p>", "One\n\nTwo\nthree"),
        ("<ul><li>a</li><li>b</li></ul>", "- a\n- b"),
        ('See <a href="https://x.test/a">the docs</a>.', "See the docs <https://x.test/a>."),
        ('<a href="https://x.test">https://x.test</a>', "https://x.test"),
        ("<script>alert(1)</script><style>p{}</style>Safe &amp; sound", "Safe & sound"),
        ("<div>  lots   of\n  space </div>", "lots of space"),
        ("<pre>  indented\n  code</pre>", "indented\n  code"),
        ("<b>unclosed <i>tags", "unclosed tags"),
        ("&lt;not a tag&gt; &#169; &#x41;", "<not a tag> \u00a9 A"),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text
