"""Message HTML as readable plain text, with the standard library's parser only.

Support messages may be HTML (the API accepts it) or plain text. ``tickets show`` and the CSV
index want text: paragraphs and line breaks kept, lists as ``- item``, links as ``text <url>``,
entities decoded, and nothing of ``<script>``/``<style>`` (their content is code, not text).
The parser never raises on malformed input; whatever it cannot read stays as text.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_to_text", "looks_like_html"]

#: Tags that start and end a block: a line break before and after.
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "thead",
        "tfoot", "tr", "ul",
    }
)  # fmt: skip
#: Tags whose content is not text a reader wants.
_SKIPPED = frozenset({"script", "style", "template", "head", "title", "noscript", "iframe"})
_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9-]*(\s[^<>]*)?/?>|<!--|&[a-zA-Z]+;|&#\d+;|&#x[0-9a-f]+;")
_SPACES = re.compile(r"[ \t\r\f\v\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def looks_like_html(content: str) -> bool:
    """Tell whether a message body reads as HTML (has a tag, a comment or an entity).

    Args:
        content: the message body.

    Returns:
        True when it holds markup; plain text keeps its own line breaks.
    """
    return _TAG.search(content) is not None


def html_to_text(content: str) -> str:
    """Render message HTML as plain text.

    Plain text (no markup) is returned as it is, less surrounding blank space.

    Args:
        content: the message body, HTML or plain text.

    Returns:
        The text: blocks on their own lines, at most one blank line in a row, ``<br>`` as a
        line break, list items as ``- item``, links as ``text <href>`` when the two differ.
    """
    if not looks_like_html(content):
        return content.strip()
    parser = _TextParser()
    parser.feed(content)
    parser.close()
    return parser.text()


class _TextParser(HTMLParser):
    """Collects text, turning block tags into line breaks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._skipping = 0
        self._pre = 0
        self._links: list[tuple[str | None, int]] = []
        # True after a line break: blank space there is indentation of the source, not text.
        self._line_start = True

    def _newline(self, then: str = "") -> None:
        self._parts.append("\n" + then)
        self._line_start = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skipping += 1
        elif tag == "br":
            self._newline()
        elif tag in _BLOCKS:
            self._newline("- " if tag == "li" else "")
            if tag == "pre":
                self._pre += 1
        elif tag == "a":
            self._links.append((dict(attrs).get("href"), len(self._parts)))
        elif tag in {"td", "th"}:
            self._parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br" or tag in _BLOCKS:
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCKS and tag != "li":  # the next item or the list's end breaks the line
            self._newline()
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            label = "".join(self._parts[start:]).strip()
            if href and href.strip() and href.strip() != label and not href.startswith("#"):
                self._parts.append(f" <{href.strip()}>")

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        if not self._pre:
            data = _SPACES.sub(" ", data)
            if self._line_start:
                data = data.lstrip(" ")
        if data:
            self._parts.append(data)
            self._line_start = data.endswith("\n")

    def text(self) -> str:
        lines = (line.rstrip(" ") for line in "".join(self._parts).split("\n"))
        return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
