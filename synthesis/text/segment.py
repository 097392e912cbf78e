"""Sentence segmentation and chunking: long text in, a lazy stream of Segments out.

Nothing here reads the whole text up front: paragraphs and sentences are found with
`finditer` over positions of the original string, and each sentence is normalised only when
the consumer asks for the next segment. The first audio can start after the first sentence,
and a 200,000-character text costs no more memory than its longest sentence.
"""

import re
from collections.abc import Iterator
from dataclasses import replace

from synthesis.text.normalize import clean_whitespace, normalize_text
from synthesis.types import Segment

DEFAULT_MAX_CHARS = 400
MIN_MAX_CHARS = 20
# Silence after a paragraph. After a sentence it is 0: engines add their own sentence gap.
PARAGRAPH_PAUSE_MS = 600

_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*|\u2029\s*")
_STOP = r"(?P<stop>[.!?…]+)[\"'”’»)\]]*(?=\s|$)|(?P<cjk>[。！？]+)[」』”’）)]*"
_CANDIDATE = re.compile(_STOP)
_CANDIDATE_OR_NEWLINE = re.compile(_STOP + r"|(?P<nl>\n)")
_OPENERS = "\"'“‘«([¿¡"
_BULLET = re.compile(r"[^\S\n]*(?:[-*•‣◦–]|[0-9]{1,3}[.)])\s")
# Heading-like lines ("Chapter One") are this short; hard-wrapped prose lines are longer.
_SHORT_LINE = 50

# A full stop after these does not end a sentence ("Dr. Smith", "e.g. this").
_NON_TERMINAL = {
    "mr", "mrs", "ms", "dr", "prof", "st", "mt", "capt", "sgt", "lt", "col", "gen", "gov",
    "sen", "rep", "rev", "hon", "apt", "ste", "e.g", "i.e", "vs", "approx", "fig", "vol",
    "ca", "cf", "a.k.a", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
    "oct", "nov", "dec",
}  # fmt: skip
_ACRONYM = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")
_MERIDIEM = {"a.m", "p.m"}

_STRONG_BREAK = re.compile(r"[;:—–)](?=\s)|[、，；：]")
_COMMA_BREAK = re.compile(r",(?=\s)")
_SPACE_BREAK = re.compile(r"\s")


def _word_before(text: str, index: int, start: int) -> str:
    begin = index
    while begin > start and (text[begin - 1].isalpha() or text[begin - 1] == "."):
        begin -= 1
    return text[begin:index]


def _next_visible(text: str, index: int, end: int) -> str:
    while index < end and (text[index].isspace() or text[index] in _OPENERS):
        index += 1
    return text[index] if index < end else ""


def _ends_sentence(text: str, match: re.Match[str], start: int, end: int) -> bool:
    if match["cjk"]:
        return True
    following = _next_visible(text, match.end(), end)
    if match.groupdict().get("nl"):
        return _line_ends_sentence(text, match, start, end)
    stop = match["stop"]
    if not following or "!" in stop or "?" in stop:
        return True
    if stop != ".":  # an ellipsis ends a sentence only when a new one visibly starts
        return following.isupper()
    word = _word_before(text, match.start(), start)
    lowered = word.lower()
    if lowered in _NON_TERMINAL or (word == "No" and following.isdigit()):
        return False
    if (len(word) == 1 and word.isupper()) or (
        _ACRONYM.fullmatch(word) and lowered not in _MERIDIEM
    ):
        return False  # initials ("J. K. Rowling") and acronyms ("U.S. Army")
    return not following.islower()


def _line_ends_sentence(text: str, match: re.Match[str], start: int, end: int) -> bool:
    """A single line break ends a sentence before a list item or after a heading-like line."""
    if _BULLET.match(text, match.end(), end):
        return True
    line = text[max(start, text.rfind("\n", start, match.start()) + 1) : match.start()].strip()
    following = _next_visible(text, match.end(), end)
    return (
        bool(line) and len(line) <= _SHORT_LINE and following.isupper() and line[-1] not in ",-–—(&"
    )


def _cut(text: str, start: int, end: int, limit: int, *, soft: int | None = None) -> int:
    """Where a piece starting at `start` should end: a clause break, else a space, else `limit`."""
    window_end = min(end, start + limit)
    floor = start + limit // 3
    for pattern in (_STRONG_BREAK, _COMMA_BREAK):
        if (found := _last(pattern, text, floor, window_end)) is not None:
            return found.end()
    if soft is not None and end - start <= limit:
        return end  # no natural break, but it fits
    found = _last(_SPACE_BREAK, text, start + 1, window_end + 1)
    return found.start() if found is not None else window_end


def _last(pattern: re.Pattern[str], text: str, start: int, end: int) -> re.Match[str] | None:
    found = None
    for found in pattern.finditer(text, start, end):  # noqa: B007 - keeps the last match
        pass
    return found


def chunk_text(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[str]:
    """Split a normalised sentence so no piece is longer than `max_chars`.

    Sentences longer than three quarters of `max_chars` are split at a semicolon, colon or
    dash, else a comma, else a space; a single "word" longer than `max_chars` is cut hard.
    """
    soft = max_chars * 3 // 4
    if len(text) <= soft:
        return [text] if text else []
    pieces, start = [], 0
    while len(text) - start > soft:
        cut = _cut(text, start, len(text), max_chars, soft=soft)
        if cut <= start:
            cut = start + max_chars
        pieces.append(text[start:cut].strip())
        start = cut
        while start < len(text) and text[start].isspace():
            start += 1
    if start < len(text):
        pieces.append(text[start:].strip())
    return [piece for piece in pieces if piece]


def iter_sentences(
    text: str, start: int = 0, end: int | None = None, *, lines: bool = True, max_raw: int = 2000
) -> Iterator[str]:
    """Yield the raw sentences of text[start:end], lazily and without normalising them.

    With `lines`, a single line break can end a sentence (headings, list items). A sentence
    longer than `max_raw` is handed out in pieces so normalisation never sees a huge string.
    """
    end = len(text) if end is None else end
    candidates = _CANDIDATE_OR_NEWLINE if lines else _CANDIDATE
    sentence_start = start
    for match in candidates.finditer(text, start, end):
        if not _ends_sentence(text, match, start, end):
            continue
        sentence_end = match.start() if match.groupdict().get("nl") else match.end()
        yield from _capped(text, sentence_start, sentence_end, max_raw)
        sentence_start = match.end()
    yield from _capped(text, sentence_start, end, max_raw)


def _capped(text: str, start: int, end: int, max_raw: int) -> Iterator[str]:
    while end - start > max_raw:
        cut = _cut(text, start, end, max_raw)
        if cut <= start:
            cut = start + max_raw
        if piece := text[start:cut].strip():
            yield piece
        start = cut
    if piece := text[start:end].strip():
        yield piece


def _paragraph_spans(text: str) -> Iterator[tuple[int, int]]:
    start = 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        yield start, match.start()
        start = match.end()
    yield start, len(text)


def speakable(text: str) -> bool:
    return any(char.isalnum() for char in text)


def check_max_chars(max_chars: int) -> None:
    if max_chars < MIN_MAX_CHARS:
        raise ValueError(f"max_chars must be at least {MIN_MAX_CHARS}, got {max_chars}")


def _pieces(text: str, normalize: bool, language: str, max_chars: int) -> Iterator[tuple[int, str]]:
    paragraph = 0
    for start, end in _paragraph_spans(text):
        spoke = False
        for sentence in iter_sentences(text, start, end, max_raw=max(4 * max_chars, 1000)):
            spoken = normalize_text(sentence, language) if normalize else clean_whitespace(sentence)
            for piece in chunk_text(spoken, max_chars):
                if speakable(piece):
                    spoke = True
                    yield paragraph, piece
        paragraph += spoke


def iter_segments(
    text: str, *, normalize: bool = True, language: str = "en", max_chars: int = DEFAULT_MAX_CHARS
) -> Iterator[Segment]:
    """Yield the Segments of plain `text` one at a time, normalising as it goes.

    Paragraphs are separated by blank lines; the last segment of each paragraph except the
    final one gets PARAGRAPH_PAUSE_MS of silence after it. No segment is longer than
    `max_chars`. Segments are produced one sentence ahead of what the caller has taken,
    because a segment's pause depends on whether the next one opens a new paragraph.
    """
    check_max_chars(max_chars)
    pending: Segment | None = None
    for paragraph, piece in _pieces(text, normalize, language, max_chars):
        if pending is not None:
            yield (
                replace(pending, pause_after_ms=PARAGRAPH_PAUSE_MS)
                if pending.paragraph != paragraph
                else pending
            )
        pending = Segment(text=piece, paragraph=paragraph)
    if pending is not None:
        yield pending
