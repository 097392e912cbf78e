import types

import pytest

from synthesis.errors import InvalidSsml, InvalidText
from synthesis.text import billed_characters, prepare, validate
from synthesis.types import Segment
from tenants.errors import ErrorCode

SSML = """<?xml version="1.0"?>
<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="en-US">
    <p>
        <s>Hello <emphasis>world</emphasis>.</s>
    </p>
</speak>"""


def test_prepare_yields_segments_of_plain_text_lazily():
    prepared = prepare(text="Dr. Smith paid $3.50. He left.")

    assert isinstance(prepared.segments, types.GeneratorType)
    assert [segment.text for segment in prepared.segments] == [
        "Doctor Smith paid three dollars and fifty cents.",
        "He left.",
    ]


def test_prepare_marks_plain_text_as_not_ssml():
    assert prepare(text="Hello.").is_ssml is False


def test_prepare_renders_ssml_into_segments():
    prepared = prepare(ssml=SSML)

    assert prepared.is_ssml is True
    assert all(isinstance(segment, Segment) for segment in prepared.segments)


def test_prepare_validates_ssml_before_returning():
    with pytest.raises(InvalidSsml):
        prepare(ssml="<speak><voice>Hi</voice></speak>")


def test_prepare_rejects_both_text_and_ssml():
    with pytest.raises(InvalidText, match="not both"):
        prepare(text="Hi", ssml="<speak>Hi</speak>")


def test_prepare_rejects_neither_text_nor_ssml():
    with pytest.raises(InvalidText):
        prepare()


def test_prepare_rejects_a_value_that_is_not_a_string():
    with pytest.raises(InvalidText):
        prepare(text=42)


@pytest.mark.parametrize("text", ["", "   ", "\n\t \r\n"])
def test_prepare_rejects_empty_text(text):
    with pytest.raises(InvalidText, match=r"^Text is empty\.$"):
        prepare(text=text)


@pytest.mark.parametrize("text", ["...", "!!! ???", "— – —", "*** ___ ~~~", "()[]{}"])
def test_prepare_rejects_text_of_only_punctuation(text):
    with pytest.raises(InvalidText, match="nothing to speak"):
        prepare(text=text)


def test_prepare_accepts_symbols_that_normalise_to_words():
    prepared = prepare(text="& %")

    assert [segment.text for segment in prepared.segments] == ["and percent"]


def test_prepare_rejects_symbols_when_normalisation_is_off():
    with pytest.raises(InvalidText):
        prepare(text="& %", normalize=False)


def test_prepare_rejects_an_empty_ssml_document():
    with pytest.raises(InvalidSsml):
        prepare(ssml="  ")


def test_prepare_rejects_ssml_with_nothing_to_speak():
    with pytest.raises(InvalidText):
        prepare(ssml='<speak><break time="1s"/> <p> </p></speak>')


def test_prepare_follows_the_language():
    (only,) = prepare(text="Er zahlte 5 Euro.", language="de").segments

    assert only.text == "Er zahlte 5 Euro."


def test_prepare_keeps_segments_within_max_chars():
    prepared = prepare(text=", ".join(["a clause that goes on"] * 50), max_chars=100)

    assert all(len(segment.text) <= 100 for segment in prepared.segments)


def test_prepare_errors_carry_stable_codes():
    with pytest.raises(InvalidText) as text_error:
        prepare(text=" ")
    with pytest.raises(InvalidSsml) as ssml_error:
        prepare(ssml="<speak>")

    assert (text_error.value.code, text_error.value.status) == (ErrorCode.INVALID_TEXT, 400)
    assert (ssml_error.value.code, ssml_error.value.status) == (ErrorCode.INVALID_SSML, 400)


def test_billed_characters_of_text_drop_surrounding_whitespace():
    assert billed_characters(text="  Hello, world!\n") == 13


def test_billed_characters_of_text_count_inner_whitespace_runs_once():
    assert billed_characters(text="One.\r\n\r\nTwo  three") == len("One. Two three")


def test_billed_characters_count_code_points():
    assert billed_characters(text="héllo 日本 👍") == 10


def test_billed_characters_of_ssml_exclude_tags_and_attributes():
    assert billed_characters(ssml='<speak><prosody rate="slow">Hello</prosody> world</speak>') == 11


def test_billed_characters_of_ssml_ignore_indentation():
    assert billed_characters(ssml=SSML) == len("Hello world.")


def test_billed_characters_of_ssml_count_an_entity_as_one_character():
    assert billed_characters(ssml="<speak>Tom &amp; Jerry</speak>") == len("Tom & Jerry")


def test_billed_characters_of_ssml_count_say_as_content():
    assert (
        billed_characters(
            ssml='<speak>Call <say-as interpret-as="telephone">555-1234</say-as></speak>'
        )
        == 13
    )


def test_billed_characters_of_ssml_ignore_comments():
    assert (
        billed_characters(ssml="<speak>Hi<!-- a long comment that is not spoken --></speak>") == 2
    )


def test_billed_characters_of_ssml_bill_a_sub_alias_longer_than_its_text():
    # Otherwise any amount of speech could ride for free in alias attributes.
    ssml = '<speak>The <sub alias="World Health Organization">WHO</sub></speak>'

    assert billed_characters(ssml=ssml) == len("The World Health Organization")


def test_billed_characters_of_ssml_bill_sub_text_longer_than_its_alias():
    assert billed_characters(ssml='<speak><sub alias="NASA">N.A.S.A.</sub></speak>') == len(
        "N.A.S.A."
    )


def test_billed_characters_raise_for_malformed_ssml():
    with pytest.raises(InvalidSsml):
        billed_characters(ssml="<speak>Hi")


def test_billed_characters_need_exactly_one_input():
    with pytest.raises(InvalidText):
        billed_characters()


def test_billed_characters_match_prepare():
    assert billed_characters(ssml=SSML) == prepare(ssml=SSML).billed_characters


def test_validate_returns_the_billed_characters():
    assert validate(text=" Hello. ") == 6


def test_validate_raises_for_unsupported_ssml():
    with pytest.raises(InvalidSsml):
        validate(ssml='<speak><audio src="x.wav"/></speak>')
