"""What the search index holds of a ticket: its subject and its messages as plain text."""

from __future__ import annotations

import html.parser
from collections.abc import Iterable

from vpsbg_support.models import Ticket

_BLOCKS = frozenset(
    {"p", "div", "br", "li", "ul", "ol", "tr", "td", "th", "table", "h1", "h2", "h3", "h4", "h5"}
    | {"h6", "pre", "blockquote", "hr", "section", "article", "header", "footer"}
)
_SKIPPED = frozenset({"script", "style", "head", "title"})


class _TextParser(html.parser.HTMLParser):
    """Collects the text of an HTML fragment: tags dropped, blocks separated, entities decoded,
    script and style left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skipping += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment (or of plain text, unchanged but for spacing).

    ``html_to_text("<p>Disk <b>full</b></p>&amp; more")`` gives ``"Disk full\\n& more"``.
    """
    if "<" not in fragment and "&" not in fragment:  # plain text: no parser needed
        lines = (" ".join(line.split()) for line in fragment.splitlines())
        return "\n".join(line for line in lines if line)
    parser = _TextParser()
    parser.feed(fragment)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def messages_text(ticket: Ticket) -> str:
    """Every message of a ticket as plain text, one after another, attachment names included."""
    parts: list[str] = []
    for message in ticket.messages:
        if message.content:
            parts.append(html_to_text(message.content))
        parts.extend(_names(message.attachments))
    return "\n\n".join(part for part in parts if part)


def _names(attachments: Iterable[object]) -> Iterable[str]:
    for attachment in attachments:
        name = getattr(attachment, "name", None)
        if isinstance(name, str):
            yield name
