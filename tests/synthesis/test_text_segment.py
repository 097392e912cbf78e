import pytest

from synthesis.text import segment
from synthesis.text.segment import PARAGRAPH_PAUSE_MS, chunk_text, iter_segments, iter_sentences

LONG_PARAGRAPH = (
    "Dr. Smith paid $3.50 on 2024-03-15 at 3:30 pm. It grew 12.5% in 1999, e.g. fast! " * 20
)


def test_iter_sentences_splits_at_full_stops():
    assert list(iter_sentences("One two. Three four. Five.")) == [
        "One two.",
        "Three four.",
        "Five.",
    ]


def test_iter_sentences_splits_after_question_and_exclamation_marks():
    assert list(iter_sentences("Really? Yes! Good.")) == ["Really?", "Yes!", "Good."]


@pytest.mark.parametrize(
    "sentence",
    [
        "Dr. Smith met Mrs. Jones.",
        "Fruit, e.g. apples, i.e. the red ones.",
        "Pi is 3.14 and e is 2.72 today.",
        "J. K. Rowling wrote it.",
        "It lies in the U.S. Army base.",
        "Cats vs. Dogs is a film.",
        "See No. 5 for details.",
        "It costs approx. five dollars.",
        "Visit example.com/docs. now",
    ],
)
def test_iter_sentences_keeps_abbreviations_and_decimals_inside_a_sentence(sentence):
    assert list(iter_sentences(sentence)) == [sentence]


def test_iter_sentences_splits_after_a_closing_quote():
    assert list(iter_sentences('He said "Stop." Then he left.')) == [
        'He said "Stop."',
        "Then he left.",
    ]


def test_iter_sentences_splits_after_am_when_a_sentence_follows():
    assert list(iter_sentences("We met at 10 a.m. Then we left.")) == [
        "We met at 10 a.m.",
        "Then we left.",
    ]


def test_iter_sentences_splits_at_an_ellipsis_before_a_capital():
    assert list(iter_sentences("Wait... What? Well... maybe.")) == [
        "Wait...",
        "What?",
        "Well... maybe.",
    ]


def test_iter_sentences_splits_japanese_without_spaces():
    assert list(iter_sentences("今日は晴れ。明日は雨！")) == ["今日は晴れ。", "明日は雨！"]


def test_iter_sentences_splits_before_list_items():
    assert list(iter_sentences("Buy:\n- eggs\n- milk")) == ["Buy:", "- eggs", "- milk"]


def test_iter_sentences_splits_after_a_heading_line():
    assert list(iter_sentences("Chapter One\nThe night was dark.")) == [
        "Chapter One",
        "The night was dark.",
    ]


def test_iter_sentences_joins_hard_wrapped_lines():
    text = (
        "This long sentence was wrapped by an e-mail program at\nseventy-two columns, as they do."
    )

    assert list(iter_sentences(text)) == [text]


def test_iter_sentences_hands_out_a_sentence_without_punctuation_in_pieces():
    pieces = list(iter_sentences("word " * 1000, max_raw=300))

    assert len(pieces) > 1
    assert all(len(piece) <= 300 for piece in pieces)


def test_chunk_text_keeps_a_short_sentence_whole():
    assert chunk_text("A short sentence.", 400) == ["A short sentence."]


def test_chunk_text_splits_a_long_sentence_at_semicolons_first():
    text = "; ".join(["a clause of some words, with a comma inside it"] * 10) + "."

    pieces = chunk_text(text, 200)

    assert all(piece.endswith((";", ".")) for piece in pieces)


def test_chunk_text_splits_at_commas_when_there_is_no_semicolon():
    text = ", ".join(["a clause of some words"] * 30) + "."

    pieces = chunk_text(text, 200)

    assert all(piece.endswith((",", ".")) for piece in pieces)


@pytest.mark.parametrize(
    "text",
    [
        "word " * 500,
        "x" * 1000,
        ", ".join(["clause"] * 300),
        "; ".join(["a somewhat longer clause here"] * 60),
        LONG_PARAGRAPH,
    ],
)
@pytest.mark.parametrize("max_chars", [40, 100, 400])
def test_chunk_text_never_exceeds_max_chars(text, max_chars):
    pieces = chunk_text(text.strip(), max_chars)

    assert pieces
    assert all(0 < len(piece) <= max_chars for piece in pieces)


def test_chunk_text_loses_no_words():
    text = ", ".join(f"clause {index}" for index in range(200))

    pieces = chunk_text(text, 100)

    assert " ".join(pieces).split() == text.split()


def test_iter_segments_normalises_each_sentence():
    segments = list(iter_segments("Dr. Smith paid $3.50. He left at 10 a.m."))

    assert [segment.text for segment in segments] == [
        "Doctor Smith paid three dollars and fifty cents.",
        "He left at ten a m.",
    ]


def test_iter_segments_adds_no_pause_after_a_sentence():
    first, _ = iter_segments("One. Two.")

    assert first.pause_after_ms == 0


def test_iter_segments_pauses_after_each_paragraph_but_the_last():
    segments = list(iter_segments("One. Two.\n\nThree.\n \nFour."))

    assert [segment.pause_after_ms for segment in segments] == [
        0,
        PARAGRAPH_PAUSE_MS,
        PARAGRAPH_PAUSE_MS,
        0,
    ]


def test_iter_segments_numbers_paragraphs():
    segments = list(iter_segments("One. Two.\r\n\r\nThree.\n\n\n\nFour."))

    assert [segment.paragraph for segment in segments] == [0, 0, 1, 2]


def test_iter_segments_skips_paragraphs_with_nothing_to_say():
    segments = list(iter_segments("One.\n\n***\n\nTwo."))

    assert [(segment.text, segment.paragraph) for segment in segments] == [("One.", 0), ("Two.", 1)]


def test_iter_segments_leaves_text_as_written_when_normalisation_is_off():
    (only,) = iter_segments("It costs  $3.50.", normalize=False)

    assert only.text == "It costs $3.50."


def test_iter_segments_only_cleans_whitespace_for_other_languages():
    (only,) = iter_segments("Er zahlte  5 €.", language="de")

    assert only.text == "Er zahlte 5 €."


@pytest.mark.parametrize("max_chars", [40, 120, 400])
def test_iter_segments_never_exceeds_max_chars(max_chars):
    segments = list(iter_segments(LONG_PARAGRAPH.replace(". ", ", "), max_chars=max_chars))

    assert all(len(segment.text) <= max_chars for segment in segments)


def test_iter_segments_rejects_a_tiny_max_chars():
    with pytest.raises(ValueError, match="max_chars"):
        list(iter_segments("Hello.", max_chars=5))


def test_iter_segments_yields_the_first_segment_without_normalising_the_whole_text(monkeypatch):
    calls = []
    monkeypatch.setattr(
        segment, "normalize_text", lambda text, language: calls.append(text) or text
    )
    text = (LONG_PARAGRAPH + "\n\n") * 125
    assert len(text) > 200_000

    first = next(iter_segments(text))

    assert first.text
    assert len(calls) <= 3


def test_iter_segments_starts_early_on_a_huge_sentence_without_punctuation(monkeypatch):
    normalised = []
    monkeypatch.setattr(
        segment, "normalize_text", lambda text, language: normalised.append(text) or text
    )

    first = next(iter_segments("word " * 40_000))

    assert len(first.text) <= 400
    assert sum(len(text) for text in normalised) < 5_000
