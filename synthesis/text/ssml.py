"""The SSML subset Parla speaks: parsed with expat, validated strictly, rendered to Segments.

Supported: <speak> (root), <p>, <s>, <break>, <prosody>, <emphasis>, <say-as>, <sub>, <lang>.
Anything else - another element, attribute or value - is an InvalidSsml error naming it and
its line, never read aloud. The whole document is validated before any work is queued.
"""

import math
import re
from dataclasses import dataclass, field, replace
from xml.parsers import expat

from synthesis.errors import InvalidSsml
from synthesis.text.normalize import clean_whitespace, is_english, normalize_text, tidy
from synthesis.text.say_as import DATE_FORMATS, INTERPRET_AS, say_as_any_language, say_as_english
from synthesis.text.segment import (
    DEFAULT_MAX_CHARS,
    PARAGRAPH_PAUSE_MS,
    check_max_chars,
    chunk_text,
    iter_sentences,
    speakable,
)
from synthesis.types import Prosody, Segment

SSML_NAMESPACE = "http://www.w3.org/2001/10/synthesis"
MAX_DEPTH = 32
MAX_BREAK_MS = 10_000
SILENT_DB = -96.0

_ATTRIBUTES: dict[str, frozenset[str]] = {
    "speak": frozenset({"version", "xml:lang", "xmlns", "xmlns:xsi", "xsi:schemaLocation"}),
    "p": frozenset({"xml:lang"}),
    "s": frozenset({"xml:lang"}),
    "break": frozenset({"time", "strength"}),
    "prosody": frozenset({"rate", "pitch", "volume"}),
    "emphasis": frozenset({"level"}),
    "say-as": frozenset({"interpret-as", "format"}),
    "sub": frozenset({"alias"}),
    "lang": frozenset({"xml:lang"}),
}
_TEXT_ONLY = {"say-as", "sub"}

BREAK_STRENGTH_MS = {
    "none": 0,
    "x-weak": 100,
    "weak": 250,
    "medium": 400,
    "strong": 700,
    "x-strong": 1000,
}
RATES = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "default": 1.0, "fast": 1.25, "x-fast": 1.5}
PITCH_SEMITONES = {
    "x-low": -6.0,
    "low": -3.0,
    "medium": 0.0,
    "default": 0.0,
    "high": 3.0,
    "x-high": 6.0,
}
VOLUME_DB = {
    "silent": SILENT_DB,
    "x-soft": -12.0,
    "soft": -6.0,
    "medium": 0.0,
    "default": 0.0,
    "loud": 6.0,
    "x-loud": 12.0,
}
# Emphasis as modest prosody changes: slower, a little higher and louder when strong.
EMPHASIS = {
    "strong": Prosody(rate=0.9, pitch_semitones=1.0, volume_db=3.0),
    "moderate": Prosody(rate=0.95, pitch_semitones=0.5, volume_db=1.5),
    "reduced": Prosody(rate=1.05, pitch_semitones=-0.5, volume_db=-3.0),
    "none": Prosody(),
}
RATE_RANGE = (0.5, 2.0)
PITCH_RANGE = (-12.0, 12.0)
VOLUME_RANGE = (-40.0, 20.0)

_TIME_VALUE = re.compile(r"\s*(?P<value>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>ms|s)\s*")
_PERCENT = re.compile(r"\s*(?P<sign>[-+]?)(?P<value>[0-9]+(?:\.[0-9]+)?)%\s*")
_MULTIPLIER = re.compile(r"\s*(?P<value>[0-9]+(?:\.[0-9]+)?)\s*")
_SEMITONES = re.compile(r"\s*(?P<sign>[-+])(?P<value>[0-9]+(?:\.[0-9]+)?)st\s*")
_DECIBELS = re.compile(r"\s*(?P<sign>[-+]?)(?P<value>[0-9]+(?:\.[0-9]+)?)dB\s*")
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
# Placeholders for already-rendered <say-as>/<sub> text while the text around them is
# split into sentences and normalised: private-use characters no rule matches.
_PLACEHOLDER_BASE = 0xE000
_PLACEHOLDER_COUNT = 0xF8FF - _PLACEHOLDER_BASE + 1
_PLACEHOLDERS = re.compile("[\ue000-\uf8ff]")


@dataclass
class _Node:
    tag: str
    attrs: dict[str, str]
    line: int
    column: int
    children: list["_Node | str"] = field(default_factory=list)
    spoken: str = ""  # <say-as>/<sub>: what to say
    pause_ms: int = 0  # <break>
    prosody: Prosody | None = None  # <prosody>/<emphasis>: relative change
    lang: str | None = None  # xml:lang on <p>, <s>, <lang>

    def text(self) -> str:
        return "".join(child for child in self.children if isinstance(child, str))


@dataclass(frozen=True)
class SsmlDocument:
    """A validated SSML document: its element tree and what it bills."""

    root: _Node
    language: str
    billed_characters: int


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def compose(outer: Prosody, inner: Prosody) -> Prosody:
    """Nested prosody: rates multiply, semitones and decibels add, all within bounds."""
    return Prosody(
        rate=round(_clamp(outer.rate * inner.rate, RATE_RANGE), 4),
        pitch_semitones=round(
            _clamp(outer.pitch_semitones + inner.pitch_semitones, PITCH_RANGE), 4
        ),
        volume_db=round(_clamp(outer.volume_db + inner.volume_db, (SILENT_DB, VOLUME_RANGE[1])), 4),
    )


def _signed(match: re.Match[str]) -> float:
    return -float(match["value"]) if match["sign"] == "-" else float(match["value"])


class _Parser:
    def __init__(self, language: str) -> None:
        self.language = language
        self.stack: list[_Node] = []
        self.root: _Node | None = None
        # NOTE: "utf-8" overrides any encoding declared in the document: we parse a str.
        self.expat = expat.ParserCreate("utf-8")
        self.expat.buffer_text = True
        # SECURITY: no DTDs, so no entity expansion ("billion laughs") and no external
        # entities (file or network reads). Expat also refuses undefined entities.
        self.expat.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.expat.StartDoctypeDeclHandler = self._doctype
        self.expat.EntityDeclHandler = self._entity
        self.expat.ExternalEntityRefHandler = self._entity
        self.expat.ProcessingInstructionHandler = self._processing_instruction
        self.expat.StartElementHandler = self._start
        self.expat.EndElementHandler = self._end
        self.expat.CharacterDataHandler = self._characters

    def parse(self, ssml: str) -> _Node:
        try:
            self.expat.Parse(ssml, True)
        except expat.ExpatError as exc:
            column = exc.offset + 1
            raise InvalidSsml(
                f"The SSML is not well-formed XML: {expat.ErrorString(exc.code)} "
                f"at line {exc.lineno}, column {column}.",
                extra={"line": exc.lineno, "column": column},
            ) from None
        except UnicodeError:
            raise InvalidSsml("The SSML contains characters that are not valid Unicode.") from None
        if self.root is None:
            raise InvalidSsml("The SSML document is empty; it needs a <speak> root element.")
        return self.root

    # Errors -----------------------------------------------------------------------------

    def _error(self, message: str, *, node: _Node | None = None, **extra: object) -> InvalidSsml:
        line = node.line if node else self.expat.CurrentLineNumber
        column = node.column if node else self.expat.CurrentColumnNumber + 1
        return InvalidSsml(
            f"{message} (line {line}, column {column})",
            extra={"line": line, "column": column, **extra},
        )

    def _doctype(self, *args: object) -> None:
        raise self._error("DOCTYPE declarations are not allowed in SSML.")

    def _entity(self, *args: object) -> int:
        raise self._error("Entity declarations are not allowed in SSML.")

    def _processing_instruction(self, target: str, data: str) -> None:
        raise self._error(f"Processing instructions (<?{target} ...?>) are not allowed in SSML.")

    # Tree -------------------------------------------------------------------------------

    def _start(self, tag: str, attrs: dict[str, str]) -> None:
        node = _Node(tag, attrs, self.expat.CurrentLineNumber, self.expat.CurrentColumnNumber + 1)
        if self.root is None and tag != "speak":
            raise self._error(
                f"The root element must be <speak>, not <{tag}>.", node=node, element=tag
            )
        if tag not in _ATTRIBUTES:
            raise self._error(f"Unsupported SSML element <{tag}>.", node=node, element=tag)
        if self.root is not None and tag == "speak":
            raise self._error("<speak> can only be the root element.", node=node, element=tag)
        if len(self.stack) >= MAX_DEPTH:
            raise self._error(
                f"Elements are nested more than {MAX_DEPTH} deep.", node=node, element=tag
            )
        if self.stack:
            self._check_placement(node, self.stack[-1])
        for name in attrs:
            if name not in _ATTRIBUTES[tag]:
                raise self._error(
                    f'Unsupported attribute "{name}" on <{tag}>.',
                    node=node,
                    element=tag,
                    attribute=name,
                )
        self._interpret(node)
        if self.stack:
            self.stack[-1].children.append(node)
        else:
            self.root = node
        self.stack.append(node)

    def _check_placement(self, node: _Node, parent: _Node) -> None:
        if parent.tag == "break" or parent.tag in _TEXT_ONLY:
            raise self._error(
                f"<{parent.tag}> can contain only text, not <{node.tag}>.",
                node=node,
                element=node.tag,
            )
        open_tags = {open_node.tag for open_node in self.stack}
        if (node.tag == "p" and open_tags & {"p", "s"}) or (node.tag == "s" and "s" in open_tags):
            inside = "s" if "s" in open_tags else "p"
            raise self._error(
                f"<{node.tag}> cannot be inside <{inside}>.", node=node, element=node.tag
            )

    def _end(self, tag: str) -> None:
        node = self.stack.pop()
        if node.tag == "say-as":
            node.spoken = self._say_as(node)
        elif node.tag == "sub":
            node.spoken = node.attrs["alias"]

    def _characters(self, data: str) -> None:
        if not self.stack:
            return
        node = self.stack[-1]
        if node.tag == "break" and data.strip():
            raise self._error("<break> must be empty.", node=node, element="break")
        if node.children and isinstance(node.children[-1], str):
            node.children[-1] += data
        else:
            node.children.append(data)

    # Attribute values -------------------------------------------------------------------

    def _invalid(self, node: _Node, name: str, expected: str) -> InvalidSsml:
        value = node.attrs[name]
        return self._error(
            f'Invalid {name}="{value}" on <{node.tag}>: expected {expected}.',
            node=node,
            element=node.tag,
            attribute=name,
            value=value,
        )

    def _interpret(self, node: _Node) -> None:
        attrs = node.attrs
        if "xml:lang" in attrs:
            if not _LANGUAGE_TAG.fullmatch(attrs["xml:lang"]):
                raise self._invalid(node, "xml:lang", 'a language tag such as "en-US"')
            node.lang = attrs["xml:lang"]
        if node.tag == "speak":
            if attrs.get("xmlns", SSML_NAMESPACE) != SSML_NAMESPACE:
                raise self._invalid(node, "xmlns", f'"{SSML_NAMESPACE}"')
            if attrs.get("version", "1.0") not in ("1.0", "1.1"):
                raise self._invalid(node, "version", '"1.0" or "1.1"')
        elif node.tag == "lang" and node.lang is None:
            raise self._error("<lang> needs an xml:lang attribute.", node=node, element="lang")
        elif node.tag == "break":
            node.pause_ms = self._break_ms(node)
        elif node.tag == "prosody":
            node.prosody = Prosody(
                rate=self._rate(node) if "rate" in attrs else 1.0,
                pitch_semitones=self._pitch(node) if "pitch" in attrs else 0.0,
                volume_db=self._volume(node) if "volume" in attrs else 0.0,
            )
        elif node.tag == "emphasis":
            level = attrs.get("level", "moderate")
            if level not in EMPHASIS:
                raise self._invalid(node, "level", "strong, moderate, reduced or none")
            node.prosody = EMPHASIS[level]
        elif node.tag == "say-as":
            self._check_say_as(node)
        elif node.tag == "sub" and not attrs.get("alias", "").strip():
            raise self._error(
                '<sub> needs a non-empty alias="..." to speak.', node=node, element="sub"
            )

    def _break_ms(self, node: _Node) -> int:
        strength = node.attrs.get("strength", "medium")
        if strength not in BREAK_STRENGTH_MS:
            raise self._invalid(node, "strength", ", ".join(BREAK_STRENGTH_MS))
        if "time" in node.attrs:  # time wins over strength, as in SSML 1.1
            match = _TIME_VALUE.fullmatch(node.attrs["time"])
            if match is None:
                raise self._invalid(node, "time", 'a duration such as "500ms" or "2s"')
            value = float(match["value"]) * (1000 if match["unit"] == "s" else 1)
            if value > MAX_BREAK_MS:
                raise self._invalid(node, "time", f"at most {MAX_BREAK_MS // 1000}s")
            return round(value)
        return BREAK_STRENGTH_MS[strength]

    def _rate(self, node: _Node) -> float:
        value = node.attrs["rate"].strip()
        expected = 'x-slow..x-fast, a percentage such as "80%" or "+10%" (50% to 200%)'
        if value in RATES:
            return RATES[value]
        if match := _PERCENT.fullmatch(value):
            rate = 1 + _signed(match) / 100 if match["sign"] else float(match["value"]) / 100
        elif match := _MULTIPLIER.fullmatch(value):
            rate = float(match["value"])
        else:
            raise self._invalid(node, "rate", expected)
        if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
            raise self._invalid(node, "rate", expected)
        return rate

    def _pitch(self, node: _Node) -> float:
        value = node.attrs["pitch"].strip()
        expected = 'x-low..x-high, semitones such as "+2st" or a percentage such as "-10%"'
        if value in PITCH_SEMITONES:
            return PITCH_SEMITONES[value]
        if match := _SEMITONES.fullmatch(value):
            semitones = _signed(match)
        elif match := _PERCENT.fullmatch(value):
            ratio = 1 + _signed(match) / 100 if match["sign"] else float(match["value"]) / 100
            if ratio <= 0:
                raise self._invalid(node, "pitch", expected)
            semitones = 12 * math.log2(ratio)
        else:
            raise self._invalid(node, "pitch", expected)
        if not PITCH_RANGE[0] <= semitones <= PITCH_RANGE[1]:
            raise self._invalid(node, "pitch", expected)
        return semitones

    def _volume(self, node: _Node) -> float:
        value = node.attrs["volume"].strip()
        expected = 'silent..x-loud or decibels such as "+6dB" or "-3dB" (-40dB to +20dB)'
        if value in VOLUME_DB:
            return VOLUME_DB[value]
        match = _DECIBELS.fullmatch(value)
        if match is None or not VOLUME_RANGE[0] <= _signed(match) <= VOLUME_RANGE[1]:
            raise self._invalid(node, "volume", expected)
        return _signed(match)

    # <say-as> ---------------------------------------------------------------------------

    def _check_say_as(self, node: _Node) -> None:
        interpret_as = node.attrs.get("interpret-as")
        if interpret_as is None:
            raise self._error(
                "<say-as> needs an interpret-as attribute.", node=node, element="say-as"
            )
        if interpret_as not in INTERPRET_AS:
            raise self._invalid(node, "interpret-as", ", ".join(sorted(INTERPRET_AS)))
        if "format" in node.attrs:
            if interpret_as != "date":
                raise self._error(
                    'format="..." is supported only with interpret-as="date".',
                    node=node,
                    element="say-as",
                    attribute="format",
                )
            if node.attrs["format"] not in DATE_FORMATS:
                raise self._invalid(node, "format", "mdy, dmy, ymd, md, dm, ym, my, y, m or d")

    def _say_as(self, node: _Node) -> str:
        interpret_as, content = node.attrs["interpret-as"], node.text().strip()
        language = next(
            (open_node.lang for open_node in reversed(self.stack) if open_node.lang), self.language
        )
        try:
            if not content:
                raise ValueError("it is empty")
            if not is_english(language):
                return say_as_any_language(interpret_as, content)
            return say_as_english(interpret_as, content, node.attrs.get("format"))
        except ValueError as exc:
            raise self._error(
                f'<say-as interpret-as="{interpret_as}"> cannot read "{content[:40]}": {exc}.',
                node=node,
                element="say-as",
            ) from None


def _billable_text(node: _Node) -> str:
    parts = []
    for child in node.children:
        if isinstance(child, str):
            parts.append(child)
        elif child.tag == "sub":
            # <sub> bills what is spoken when that is longer than what it replaces, so an
            # alias cannot carry unbilled text.
            content = child.text()
            parts.append(
                child.attrs["alias"] if len(child.attrs["alias"]) > len(content) else content
            )
        else:
            parts.append(_billable_text(child))
    return "".join(parts)


def count_characters(text: str) -> int:
    """The billing count: code points, each whitespace run counted once, ends trimmed."""
    return len(clean_whitespace(text))


def parse_ssml(ssml: str, *, language: str = "en") -> SsmlDocument:
    """Parse and validate `ssml`; raises InvalidSsml pointing at the first problem."""
    root = _Parser(language).parse(ssml)
    return SsmlDocument(
        root=root,
        language=root.lang or language,
        billed_characters=count_characters(_billable_text(root)),
    )


@dataclass(frozen=True)
class _Context:
    prosody: Prosody
    lang: str | None  # the Segment.lang override from <lang>/<p>/<s>
    language: str  # what normalisation follows, including <speak xml:lang>


class _Renderer:
    def __init__(self, *, normalize: bool, max_chars: int) -> None:
        self.normalize = normalize
        self.max_chars = max_chars
        self.segments: list[Segment] = []
        self.paragraph = 0
        self.buffer: list[str] = []
        self.literals: list[str] = []
        self.context: _Context | None = None
        # (segment index, pause before) of a pause added by </p>, undone if nothing follows.
        self.paragraph_pause: tuple[int, int] | None = None

    def render(self, node: _Node, context: _Context) -> list[Segment]:
        self._walk(node, context)
        self._flush()
        if self.paragraph_pause and self.paragraph_pause[0] == len(self.segments) - 1:
            index, before = self.paragraph_pause
            self.segments[index] = replace(self.segments[index], pause_after_ms=before)
        return self.segments

    def _walk(self, node: _Node, context: _Context) -> None:
        for child in node.children:
            if isinstance(child, str):
                self._add(_PLACEHOLDERS.sub("", child), context)
                continue
            inner = _Context(
                prosody=compose(context.prosody, child.prosody)
                if child.prosody
                else context.prosody,
                lang=child.lang or context.lang,
                language=child.lang or context.language,
            )
            if child.tag == "break":
                self._flush()
                self._pause(child.pause_ms)
            elif child.tag in _TEXT_ONLY:
                if len(self.literals) == _PLACEHOLDER_COUNT:
                    self._flush()
                self._add(chr(_PLACEHOLDER_BASE + len(self.literals)), inner)
                self.literals.append(child.spoken)
            elif child.tag in ("p", "s"):
                self._flush()
                if child.tag == "p":
                    self._start_paragraph()
                self._walk(child, inner)
                self._flush()
                if child.tag == "p":
                    self._end_paragraph()
            else:
                self._walk(child, inner)

    def _add(self, text: str, context: _Context) -> None:
        if self.context != context and self.buffer:
            self._flush()
        self.context = context
        self.buffer.append(text)

    def _flush(self) -> None:
        raw, literals, context = "".join(self.buffer), self.literals, self.context
        self.buffer, self.literals = [], []
        if context is None or not raw.strip():
            return
        for sentence in iter_sentences(raw, lines=False, max_raw=max(4 * self.max_chars, 1000)):
            spoken = normalize_text(sentence, context.language) if self.normalize else sentence
            spoken = tidy(
                _PLACEHOLDERS.sub(
                    lambda match: f" {literals[ord(match.group(0)) - _PLACEHOLDER_BASE]} ", spoken
                )
            )
            for piece in chunk_text(spoken, self.max_chars):
                if speakable(piece):
                    self.segments.append(
                        Segment(
                            text=piece,
                            prosody=context.prosody,
                            lang=context.lang,
                            paragraph=self.paragraph,
                        )
                    )

    def _pause(self, milliseconds: int) -> None:
        if not self.segments:
            # A break before any speech: silence carried by an empty segment.
            self.segments.append(Segment(text="", paragraph=self.paragraph))
        last = self.segments[-1]
        before = last.pause_after_ms
        if self.paragraph_pause and self.paragraph_pause[0] == len(self.segments) - 1:
            before = self.paragraph_pause[1]  # a <break> between paragraphs replaces their pause
        self.segments[-1] = replace(last, pause_after_ms=min(before + milliseconds, MAX_BREAK_MS))
        self.paragraph_pause = None

    def _current_paragraph_used(self) -> bool:
        last = self.segments[-1] if self.segments else None
        return last is not None and bool(last.text) and last.paragraph == self.paragraph

    def _start_paragraph(self) -> None:
        if self._current_paragraph_used():
            self.paragraph += 1

    def _end_paragraph(self) -> None:
        if not self._current_paragraph_used():
            return
        last = self.segments[-1]
        if last.pause_after_ms < PARAGRAPH_PAUSE_MS:
            self.paragraph_pause = (len(self.segments) - 1, last.pause_after_ms)
            self.segments[-1] = replace(last, pause_after_ms=PARAGRAPH_PAUSE_MS)
        self.paragraph += 1


def render_ssml(
    document: SsmlDocument, *, normalize: bool = True, max_chars: int = DEFAULT_MAX_CHARS
) -> list[Segment]:
    """The Segments of a validated document, in order.

    Text outside <say-as> is normalised in its sentence (unless `normalize` is off); <say-as>
    and <sub> are spoken as rendered. A change of prosody or language starts a new segment,
    because a Segment carries one of each.
    """
    check_max_chars(max_chars)
    renderer = _Renderer(normalize=normalize, max_chars=max_chars)
    return renderer.render(
        document.root, _Context(prosody=Prosody(), lang=None, language=document.language)
    )
