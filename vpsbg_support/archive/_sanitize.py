"""Message HTML made inert for the archive's pages: nh3 (Ammonia) with an allow-list.

What survives: formatting and structure tags, links to ``http``/``https``/``mailto`` (with
``rel="noopener noreferrer nofollow"``), and images only when inline ``data:image/...``.
What goes: ``<script>``, ``<style>``, ``<iframe>`` and the like with their content; every event
handler and ``style`` attribute; ``javascript:``/``data:``/relative links (a relative link would
point at files next to the archive); remote images (they would tell a server the page was read).
The pages' Content-Security-Policy blocks the same things again, should a rule here miss one.

nh3 is the optional extra ``vpsbg-support[html]``; :func:`require_nh3` says how to install it.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable
from typing import Any

from vpsbg_support.archive._htmltext import looks_like_html

__all__ = ["INSTALL_HINT", "require_nh3", "sanitize_many", "sanitize_message"]

INSTALL_HINT = "pip install 'vpsbg-support[html]'"

_TAGS = frozenset(
    {
        "a", "abbr", "b", "bdi", "bdo", "blockquote", "br", "caption", "cite", "code", "col",
        "colgroup", "dd", "del", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "h1",
        "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p",
        "pre", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "table",
        "tbody", "td", "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
    }
)  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start"},
    "abbr": {"title"},
    "time": {"datetime"},
}
#: Removed together with their content: code or embedded documents, never text to read.
_DROPPED_WITH_CONTENT = frozenset(
    {"script", "style", "iframe", "object", "embed", "template", "noscript", "svg", "math"}
)
_LINK = re.compile(r"(?i)^(https?://|mailto:)")
_INLINE_IMAGE = re.compile(r"(?i)^data:image/(png|jpeg|gif|webp);base64,[a-z0-9+/=\s]*$")

_cleaner: Callable[[str], str] | None = None


def require_nh3() -> Callable[[str], str]:
    """Return the configured nh3 cleaner, importing nh3 on first use.

    Returns:
        A function cleaning one HTML fragment.

    Raises:
        ImportError: nh3 is not installed; the message says how to install it.
    """
    global _cleaner
    if _cleaner is None:
        try:
            import nh3
        except ImportError:
            raise ImportError(
                f"the HTML archive needs nh3 to sanitise messages: {INSTALL_HINT}", name="nh3"
            ) from None
        cleaner: Any = nh3.Cleaner(
            tags=set(_TAGS),
            clean_content_tags=set(_DROPPED_WITH_CONTENT),
            attributes={tag: set(names) for tag, names in _ATTRIBUTES.items()},
            attribute_filter=_filter_attribute,
            strip_comments=True,
            link_rel="noopener noreferrer nofollow",
            url_schemes={"http", "https", "mailto", "data"},
            url_relative="deny",
        )
        _cleaner = cleaner.clean
    return _cleaner


def sanitize_message(content: str | None) -> str:
    """Return a message body as safe HTML for an archive page.

    Plain text (no markup) is escaped and keeps its line breaks; HTML is cleaned by nh3.

    Args:
        content: the message body as the API sent it.

    Returns:
        An HTML fragment that runs nothing and loads nothing from outside.

    Raises:
        ImportError: nh3 is not installed (see :func:`require_nh3`).
    """
    require_nh3()
    if not content:
        return ""
    if not looks_like_html(content):
        return html.escape(content.strip()).replace("\n", "<br>\n")
    return _clean(content)


def sanitize_many(contents: list[str]) -> list[str]:
    """:func:`sanitize_message` over a list (what a worker process runs for a batch of pages).

    Args:
        contents: message bodies.

    Returns:
        Their safe HTML, in the same order.
    """
    return [sanitize_message(content) for content in contents]


@functools.lru_cache(maxsize=4096)
def _clean(content: str) -> str:
    """nh3's work, remembered: an earlier version's page shows mostly the same messages."""
    return require_nh3()(content)


def _filter_attribute(tag: str, name: str, value: str) -> str | None:
    """Keep a URL only where it is harmless: links to the web or mail, images inline."""
    if name == "href":
        return value if _LINK.match(value.strip()) else None
    if name == "src":
        return value if tag == "img" and _INLINE_IMAGE.match(value.strip()) else None
    return value
