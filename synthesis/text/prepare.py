"""One entry point from a request's text or SSML to billed characters and Segments."""

from collections.abc import Iterator
from dataclasses import dataclass

from synthesis.errors import InvalidSsml, InvalidText
from synthesis.text.normalize import normalize_text
from synthesis.text.segment import DEFAULT_MAX_CHARS, check_max_chars, iter_segments, speakable
from synthesis.text.ssml import count_characters, parse_ssml, render_ssml
from synthesis.types import Segment


@dataclass(frozen=True)
class PreparedText:
    """Validated input, ready for an engine.

    `segments` can be iterated once. For plain text it is lazy (sentences are normalised as
    they are taken); SSML was parsed, validated and rendered in full by prepare().
    """

    segments: Iterator[Segment]
    billed_characters: int
    is_ssml: bool
    # SSML only (it is rendered in full anyway): every segment, for the length estimate.
    rendered: tuple[Segment, ...] = ()

    def audio_seconds_floor(self, *, characters_per_second: float, speed: float = 1.0) -> float:
        """The least audio this input can make: every pause, and its words read at
        `characters_per_second` (a fast reading of the voice) times `speed`.

        An estimate that errs short, so a request refused on it is over its limit for sure;
        the worker checks the real length as it renders.
        """
        if not self.is_ssml:
            return self.billed_characters / (characters_per_second * speed)
        seconds = 0.0
        for segment in self.rendered:
            rate = characters_per_second * speed * segment.prosody.rate
            seconds += count_characters(segment.text) / rate + segment.pause_after_ms / 1000
        return seconds


def _one_of(text: str | None, ssml: str | None) -> str:
    if (text is None) == (ssml is None):
        raise InvalidText(
            "Give either text or ssml." if text is None else "Give either text or ssml, not both."
        )
    value = text if text is not None else ssml
    if not isinstance(value, str):
        raise InvalidText(f"{'text' if text is not None else 'ssml'} must be a string.")
    return value


def billed_characters(*, text: str | None = None, ssml: str | None = None) -> int:
    """The characters a request is billed for: what the user wrote, never markup.

    Counted in Unicode code points, with leading and trailing whitespace dropped and every
    inner run of whitespace counted as one character, so neither the indentation of an SSML
    document nor a text's line endings are billed. For SSML only text content counts (an
    entity such as &amp; is one character); tags, attributes and comments do not, except
    that a <sub> bills its alias when the alias is longer than the text it replaces, since
    the alias is what gets spoken. Raises InvalidSsml for a document that does not parse.
    """
    value = _one_of(text, ssml)
    if ssml is not None:
        return parse_ssml(value).billed_characters
    return count_characters(value)


def _check_text(text: str, *, normalize: bool, language: str) -> None:
    if not text.strip():
        raise InvalidText("Text is empty.")
    # Letters and digits always survive normalisation; only symbol-only text needs a look.
    if speakable(text):
        return
    if not speakable(normalize_text(text, language) if normalize else text):
        raise InvalidText("Text has nothing to speak: it contains only symbols or punctuation.")


def prepare(
    *,
    text: str | None = None,
    ssml: str | None = None,
    normalize: bool = True,
    language: str = "en",
    max_chars: int = DEFAULT_MAX_CHARS,
) -> PreparedText:
    """Validate a request's input and return its billed characters and its Segments.

    Exactly one of `text` and `ssml` must be given (InvalidText otherwise). Plain text that
    is empty or only symbols is InvalidText; SSML outside the supported subset is
    InvalidSsml. Everything is checked here, before any work is queued; only the
    normalisation of plain text is left to the segments iterator.
    """
    check_max_chars(max_chars)
    value = _one_of(text, ssml)
    if ssml is None:
        _check_text(value, normalize=normalize, language=language)
        return PreparedText(
            segments=iter_segments(
                value, normalize=normalize, language=language, max_chars=max_chars
            ),
            billed_characters=count_characters(value),
            is_ssml=False,
        )
    if not value.strip():
        raise InvalidSsml("The SSML document is empty; it needs a <speak> root element.")
    document = parse_ssml(value, language=language)
    segments = render_ssml(document, normalize=normalize, max_chars=max_chars)
    if not any(speakable(segment.text) for segment in segments):
        raise InvalidText("Text is empty.")
    return PreparedText(
        segments=iter(segments), billed_characters=document.billed_characters, is_ssml=True,
        rendered=tuple(segments),
    )


def validate(*, text: str | None = None, ssml: str | None = None, language: str = "en") -> int:
    """For the web tier: raise what prepare() would raise, else return the billed characters."""
    return prepare(text=text, ssml=ssml, language=language).billed_characters
