"""Name sanitising for downloads: whatever the server sends, one safe file inside the folder."""

from __future__ import annotations

import os
import tempfile
import unicodedata
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from vpsbg_support import safe_filename
from vpsbg_support._filenames import filename_from_headers

RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789\u00b9\u00b2\u00b3"
}

#: Any code point at all, surrogates and controls included.
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=400)
#: Text built from the characters that make names dangerous, to hit the interesting cases often.
NASTY_TEXT = st.lists(
    st.sampled_from(["/", "\\", ".", "..", " ", "\0", "\n", "\r", "\u202e", "\x85", "\ud800"])
    | st.sampled_from(sorted(RESERVED))
    | st.sampled_from(["a", "ж", "🙂", ".txt", "C:", ":", "*", "?", '"', "<", ">", "|"])
    | st.just("x" * 100),
    max_size=40,
).map("".join)


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name).resolve()


def assert_safe(name: str, folder: Path) -> None:
    assert name and name not in (".", "..") and not name.startswith(".")
    assert "/" not in name and "\\" not in name and os.sep not in name
    assert not any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Zl", "Zp"} for ch in name), (
        ascii(name)
    )
    assert len(name.encode("utf-8")) <= 255
    assert name == name.strip() and not name.endswith((".", " "))
    assert name.partition(".")[0].rstrip(" ").upper() not in RESERVED
    assert os.path.basename(name) == name
    # The real test: it can be created, inside the folder, as the folder's only new entry.
    target = folder / name
    assert target.resolve().parent == folder
    with open(target, "xb"):
        pass
    try:
        assert os.listdir(folder) == [name]
    finally:
        target.unlink()


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT | NASTY_TEXT)
@example("../../etc/passwd")
@example("..")
@example("CON")
@example("nul\x00.txt")
@example("a\nb")
@example("x" * 300)
def test_any_string_becomes_one_safe_component_inside_the_folder(folder: Path, raw: str) -> None:
    name = safe_filename(raw, "fallback.bin")
    assert_safe(name, folder)
    assert safe_filename(name, "fallback.bin") == name  # already safe names are kept as they are


@settings(max_examples=100, deadline=None)
@given(NASTY_TEXT, NASTY_TEXT)
def test_a_hostile_fallback_is_sanitised_too(folder: Path, raw: str, fallback: str) -> None:
    assert_safe(safe_filename(raw, fallback), folder)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("Отчёт 2024.xlsx", "Отчёт 2024.xlsx"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("a/b", "a_b"),
        ("..\\..\\win.ini", "_.._win.ini"),
        ("/etc/shadow", "_etc_shadow"),
        ("C:evil.exe", "C_evil.exe"),
        ("CON", "_CON"),
        ("con.txt", "_con.txt"),
        ("Com1.tar.gz", "_Com1.tar.gz"),
        ("lpt\u00b9", "_lpt\u00b9"),
        ("CONSOLE.log", "CONSOLE.log"),
        ("nul\x00.txt", "_nul.txt"),
        ("evil\nname.txt", "evilname.txt"),
        ("evil\r\nX-Injected: 1", "evilX-Injected_ 1"),
        ("next\x85line\u2028.txt", "nextline.txt"),
        ("\u202etxt.exe", "txt.exe"),
        (".bashrc", "bashrc"),
        ("  spaced  .txt . ", "spaced  .txt"),
        ("bad\udcffbyte.bin", "badbyte.bin"),
    ],
)
def test_known_hostile_names(raw: str, expected: str) -> None:
    assert safe_filename(raw, "fallback") == expected


@pytest.mark.parametrize("raw", [None, "", "..", ".", "...", "/", "//..//", " . ", "\0\n", "_._"])
def test_nothing_usable_falls_back(raw: str | None) -> None:
    assert safe_filename(raw, "attachment-7") == "attachment-7"
    assert safe_filename(raw, "../..") == "attachment"
    assert safe_filename(raw, "../x.log") == "_x.log"


def test_long_names_are_cut_to_255_bytes_keeping_the_extension() -> None:
    name = safe_filename("x" * 300 + ".txt", "f")
    assert len(name.encode()) == 255 and name.endswith(".txt")
    wide = safe_filename("ж" * 300 + ".log", "f")  # 2 bytes each: never cut inside a character
    assert len(wide.encode()) <= 255 and wide.endswith(".log") and set(wide[:-4]) == {"ж"}
    long_ext = safe_filename("a." + "b" * 300, "f")  # an "extension" that long is not kept
    assert len(long_ext.encode()) == 255 and long_ext.startswith("a.b")
    dots = safe_filename("a" * 250 + " . . .txt" + "z" * 10, "f")
    assert not dots.endswith((" ", "."))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('attachment; filename="a.txt"', "a.txt"),
        ("attachment; filename=plain.log", "plain.log"),
        ("attachment; filename=\"x.txt\"; filename*=UTF-8''%D0%B6%2F..%00.txt", "ж/..\x00.txt"),
        ('attachment; filename="a \\"q\\".txt"', 'a "q".txt'),
        ("attachment", None),
        pytest.param(
            "attachment; filename*=bogus-charset''%ff",
            None,
            marks=pytest.mark.filterwarnings("ignore::aiohttp.BadContentDispositionParam"),
        ),
        ("", None),
    ],
)
def test_filename_from_content_disposition(header: str, expected: str | None) -> None:
    headers = CIMultiDict({"Content-Disposition": header} if header else {})
    assert filename_from_headers(headers) == expected


def test_hostile_content_disposition_raises_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        headers = CIMultiDict({"Content-Disposition": 'attachment; filename="a"; ;;=\x01bad'})
        assert filename_from_headers(headers) in (None, "a")


@pytest.mark.parametrize(("raw", "expected"), [(". 0", "0"), (" . .x. ", "x"), (".\u3000.y", "y")])
def test_leading_dots_and_blanks_are_trimmed_together(raw: str, expected: str) -> None:
    # Found by hypothesis: ". 0" used to give " 0", which a second pass changed again.
    assert safe_filename(raw, "f") == expected
