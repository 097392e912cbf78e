import random

import pytest

from synthesis.errors import InvalidSsml
from synthesis.text.segment import PARAGRAPH_PAUSE_MS
from synthesis.text.ssml import MAX_BREAK_MS, MAX_DEPTH, SILENT_DB, parse_ssml, render_ssml
from synthesis.types import Prosody, Segment


def render(body: str, **options) -> list[Segment]:
    return render_ssml(parse_ssml(f"<speak>{body}</speak>"), **options)


def texts(body: str, **options) -> list[str]:
    return [segment.text for segment in render(body, **options)]


def error_for(ssml: str) -> InvalidSsml:
    with pytest.raises(InvalidSsml) as caught:
        parse_ssml(ssml)
    return caught.value


# Validation ------------------------------------------------------------------------------


def test_parse_ssml_accepts_a_full_document_with_declaration_and_namespace():
    document = parse_ssml(
        '<?xml version="1.0" encoding="UTF-8"?>\n<speak version="1.0" '
        'xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="en-US">Hi</speak>'
    )

    assert document.language == "en-US"


def test_parse_ssml_requires_speak_as_the_root():
    error = error_for("<p>Hello</p>")

    assert error.extra == {"line": 1, "column": 1, "element": "p"}


def test_parse_ssml_reports_malformed_xml_with_line_and_column():
    error = error_for("<speak>\n  <p>Hello</s>\n</speak>")

    assert (error.extra["line"], error.extra["column"]) == (2, 13)
    assert "line 2" in error.message


def test_parse_ssml_names_an_unsupported_element_and_its_line():
    error = error_for('<speak>\n<p>Hi</p>\n  <voice name="x">there</voice></speak>')

    assert error.extra == {"element": "voice", "line": 3, "column": 3}
    assert "<voice>" in error.message


def test_parse_ssml_rejects_a_namespaced_vendor_element():
    error = error_for('<speak><mstts:express-as style="cheerful">Hi</mstts:express-as></speak>')

    assert error.extra["element"] == "mstts:express-as"


def test_parse_ssml_names_an_unsupported_attribute():
    error = error_for('<speak><prosody contour="(0%,+20Hz)">Hi</prosody></speak>')

    assert (error.extra["element"], error.extra["attribute"]) == ("prosody", "contour")


def test_parse_ssml_rejects_entity_expansion_attacks():
    billion_laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        "<speak>&lol2;</speak>"
    )

    error = error_for(billion_laughs)

    assert "DOCTYPE" in error.message


def test_parse_ssml_rejects_external_entities():
    error = error_for(
        '<!DOCTYPE speak [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><speak>&xxe;</speak>'
    )

    assert "DOCTYPE" in error.message


def test_parse_ssml_rejects_an_undefined_entity():
    error = error_for("<speak>A&nbsp;B</speak>")

    assert (error.extra["line"], error.extra["column"]) == (1, 9)


def test_parse_ssml_rejects_processing_instructions():
    error = error_for('<speak><?xml-stylesheet href="x.xsl"?>Hi</speak>')

    assert "Processing instructions" in error.message


def test_parse_ssml_rejects_nesting_deeper_than_the_limit():
    depth = MAX_DEPTH  # plus <speak> makes one level too many
    error = error_for("<speak>" + "<prosody>" * depth + "Hi" + "</prosody>" * depth + "</speak>")

    assert error.extra["element"] == "prosody"


def test_parse_ssml_accepts_nesting_up_to_the_limit():
    depth = MAX_DEPTH - 1

    document = parse_ssml(
        "<speak>" + "<prosody>" * depth + "Hi" + "</prosody>" * depth + "</speak>"
    )

    assert document.billed_characters == 2


@pytest.mark.parametrize(
    "body",
    [
        "<speak>Hi</speak>",  # speak inside speak
        "<s><p>Hi</p></s>",
        "<p><p>Hi</p></p>",
        "<s><s>Hi</s></s>",
        '<say-as interpret-as="cardinal"><emphasis>5</emphasis></say-as>',
        '<sub alias="x"><break/>y</sub>',
        "<break>Hi</break>",
    ],
)
def test_parse_ssml_rejects_misplaced_content(body):
    with pytest.raises(InvalidSsml):
        parse_ssml(f"<speak>{body}</speak>")


@pytest.mark.parametrize(
    ("body", "attribute"),
    [
        ('<break time="11s"/>', "time"),
        ('<break time="10001ms"/>', "time"),
        ('<break time="-1s"/>', "time"),
        ('<break time="soon"/>', "time"),
        ('<break strength="huge"/>', "strength"),
        ('<prosody rate="300%">x</prosody>', "rate"),
        ('<prosody rate="-60%">x</prosody>', "rate"),
        ('<prosody rate="very-fast">x</prosody>', "rate"),
        ('<prosody pitch="+20Hz">x</prosody>', "pitch"),
        ('<prosody pitch="+13st">x</prosody>', "pitch"),
        ('<prosody pitch="-100%">x</prosody>', "pitch"),
        ('<prosody volume="+30dB">x</prosody>', "volume"),
        ('<prosody volume="very-loud">x</prosody>', "volume"),
        ('<emphasis level="huge">x</emphasis>', "level"),
        ('<say-as interpret-as="currency">5</say-as>', "interpret-as"),
        ('<say-as interpret-as="date" format="qqq">2024</say-as>', "format"),
        ('<say-as interpret-as="cardinal" format="mdy">5</say-as>', "format"),
        ('<lang xml:lang="not a language">x</lang>', "xml:lang"),
    ],
)
def test_parse_ssml_rejects_unsupported_values(body, attribute):
    error = error_for(f"<speak>{body}</speak>")

    assert error.extra["attribute"] == attribute
    assert error.extra["line"] == 1


@pytest.mark.parametrize(
    "body",
    [
        '<say-as interpret-as="cardinal">five</say-as>',
        '<say-as interpret-as="ordinal">third</say-as>',
        '<say-as interpret-as="digits">12a</say-as>',
        '<say-as interpret-as="date" format="mdy">13/45/2024</say-as>',
        '<say-as interpret-as="time">25:00</say-as>',
        '<say-as interpret-as="time">13:00 pm</say-as>',
        '<say-as interpret-as="telephone">call me</say-as>',
        '<say-as interpret-as="cardinal"> </say-as>',
    ],
)
def test_parse_ssml_rejects_say_as_content_it_cannot_read(body):
    error = error_for(f"<speak>{body}</speak>")

    assert error.extra["element"] == "say-as"


def test_parse_ssml_requires_interpret_as_on_say_as():
    error = error_for("<speak><say-as>5</say-as></speak>")

    assert "interpret-as" in error.message


def test_parse_ssml_requires_an_alias_on_sub():
    error = error_for("<speak><sub>WHO</sub></speak>")

    assert error.extra["element"] == "sub"


def test_parse_ssml_requires_xml_lang_on_lang():
    error = error_for("<speak><lang>Bonjour</lang></speak>")

    assert error.extra["element"] == "lang"


def test_parse_ssml_rejects_a_foreign_namespace():
    error = error_for('<speak xmlns="http://example.com/not-ssml">Hi</speak>')

    assert error.extra["attribute"] == "xmlns"


def test_parse_ssml_rejects_text_after_the_root():
    error = error_for("<speak>Hi</speak>trailing")

    assert error.extra["line"] == 1


# Rendering -------------------------------------------------------------------------------


def test_render_ssml_normalises_text_outside_say_as():
    assert texts("It costs $3.50.") == ["It costs three dollars and fifty cents."]


def test_render_ssml_leaves_text_as_written_when_normalisation_is_off():
    assert texts('It costs $3.50 <say-as interpret-as="cardinal">5</say-as>.', normalize=False) == [
        "It costs $3.50 five."
    ]


@pytest.mark.parametrize(
    ("body", "spoken"),
    [
        ('<say-as interpret-as="characters">abc</say-as>', "A B C"),
        ('<say-as interpret-as="spell-out">R2-D2</say-as>', "R two dash D two"),
        ('<say-as interpret-as="cardinal">1,234</say-as>', "one thousand two hundred thirty-four"),
        ('<say-as interpret-as="number">-3.5</say-as>', "minus three point five"),
        ('<say-as interpret-as="ordinal">3</say-as>', "third"),
        ('<say-as interpret-as="ordinal">22nd</say-as>', "twenty-second"),
        ('<say-as interpret-as="digits">1234</say-as>', "one two three four"),
        (
            '<say-as interpret-as="date" format="mdy">03/15/2024</say-as>',
            "March fifteenth, twenty twenty-four",
        ),
        (
            '<say-as interpret-as="date" format="dmy">15/03/2024</say-as>',
            "the fifteenth of March, twenty twenty-four",
        ),
        (
            '<say-as interpret-as="date" format="ymd">2024-03-15</say-as>',
            "March fifteenth, twenty twenty-four",
        ),
        ('<say-as interpret-as="date">2024-03-15</say-as>', "March fifteenth, twenty twenty-four"),
        ('<say-as interpret-as="date" format="my">03/2024</say-as>', "March twenty twenty-four"),
        ('<say-as interpret-as="date" format="y">1999</say-as>', "nineteen ninety-nine"),
        ('<say-as interpret-as="time">14:05</say-as>', "fourteen oh five"),
        ('<say-as interpret-as="time">3:30pm</say-as>', "three thirty p m"),
        (
            '<say-as interpret-as="telephone">(555) 123-4567</say-as>',
            "five five five, one two three, four five six seven",
        ),
    ],
)
def test_render_ssml_speaks_say_as_by_its_interpret_as(body, spoken):
    assert texts(body) == [spoken]


def test_render_ssml_keeps_say_as_digits_instead_of_normalising_them():
    assert texts('Code <say-as interpret-as="digits">2024</say-as> now.') == [
        "Code two zero two four now."
    ]


def test_render_ssml_speaks_the_alias_of_sub():
    assert texts('The <sub alias="World Health Organization">WHO</sub> met.') == [
        "The World Health Organization met."
    ]


def test_render_ssml_decodes_entities():
    assert texts("Tom &amp; Jerry &#x41;&#66;") == ["Tom and Jerry AB"]


def test_render_ssml_ignores_comments():
    assert texts("Hello <!-- not spoken --> world.") == ["Hello world."]


def test_render_ssml_splits_text_into_sentences():
    assert texts("Dr. Smith is here. He paid.") == ["Doctor Smith is here.", "He paid."]


def test_render_ssml_ends_a_sentence_at_s():
    assert texts("<s>One</s><s>Two</s>") == ["One", "Two"]


@pytest.mark.parametrize(
    ("time", "milliseconds"), [("500ms", 500), ("2s", 2000), ("1.5s", 1500), ("10s", 10_000)]
)
def test_render_ssml_puts_a_break_time_after_the_previous_segment(time, milliseconds):
    first, second = render(f'One <break time="{time}"/> two')

    assert (first.text, first.pause_after_ms, second.pause_after_ms) == ("One", milliseconds, 0)


@pytest.mark.parametrize(
    ("strength", "milliseconds"),
    [
        ("none", 0),
        ("x-weak", 100),
        ("weak", 250),
        ("medium", 400),
        ("strong", 700),
        ("x-strong", 1000),
    ],
)
def test_render_ssml_maps_break_strength_to_milliseconds(strength, milliseconds):
    first, _ = render(f'One <break strength="{strength}"/> two')

    assert first.pause_after_ms == milliseconds


def test_render_ssml_reads_a_bare_break_as_medium():
    first, _ = render("One <break/> two")

    assert first.pause_after_ms == 400


def test_render_ssml_adds_consecutive_breaks_up_to_the_limit():
    first, _ = render('One <break time="8s"/><break time="8s"/> two')

    assert first.pause_after_ms == MAX_BREAK_MS


def test_render_ssml_carries_a_leading_break_on_an_empty_segment():
    segments = render('<break time="1s"/>Hello')

    assert [(segment.text, segment.pause_after_ms) for segment in segments] == [
        ("", 1000),
        ("Hello", 0),
    ]


def test_render_ssml_pauses_after_each_paragraph_but_the_last():
    segments = render("<p>One.</p><p>Two. Three.</p><p>Four.</p>")

    assert [segment.pause_after_ms for segment in segments] == [
        PARAGRAPH_PAUSE_MS,
        0,
        PARAGRAPH_PAUSE_MS,
        0,
    ]


def test_render_ssml_numbers_paragraphs():
    segments = render("<p>One.</p><p>Two. Three.</p>Loose text.")

    assert [segment.paragraph for segment in segments] == [0, 1, 1, 2]


def test_render_ssml_lets_a_break_between_paragraphs_replace_their_pause():
    first, _ = render('<p>One.</p><break time="2s"/><p>Two.</p>')

    assert first.pause_after_ms == 2000


@pytest.mark.parametrize(
    ("attributes", "prosody"),
    [
        ('rate="x-slow"', Prosody(rate=0.5)),
        ('rate="fast"', Prosody(rate=1.25)),
        ('rate="80%"', Prosody(rate=0.8)),
        ('rate="+10%"', Prosody(rate=1.1)),
        ('rate="-20%"', Prosody(rate=0.8)),
        ('pitch="+2st"', Prosody(pitch_semitones=2.0)),
        ('pitch="-3st"', Prosody(pitch_semitones=-3.0)),
        ('pitch="x-high"', Prosody(pitch_semitones=6.0)),
        ('pitch="+100%"', Prosody(pitch_semitones=12.0)),
        ('volume="+6dB"', Prosody(volume_db=6.0)),
        ('volume="-3dB"', Prosody(volume_db=-3.0)),
        ('volume="x-soft"', Prosody(volume_db=-12.0)),
        ('volume="silent"', Prosody(volume_db=SILENT_DB)),
    ],
)
def test_render_ssml_reads_prosody_attributes(attributes, prosody):
    (only,) = render(f"<prosody {attributes}>Hi</prosody>")

    assert only.prosody == pytest.approx(prosody)


def test_render_ssml_composes_nested_prosody():
    outer, inner = render(
        '<prosody rate="80%" pitch="+2st" volume="-3dB">Outer '
        '<prosody rate="x-fast" pitch="-1st" volume="+6dB">inner</prosody></prosody>'
    )

    assert outer.prosody == Prosody(rate=0.8, pitch_semitones=2.0, volume_db=-3.0)
    assert inner.prosody == Prosody(rate=1.2, pitch_semitones=1.0, volume_db=3.0)


def test_render_ssml_clamps_composed_prosody():
    twice_as_fast = '<prosody rate="200%" pitch="+10st">'

    (only,) = render(f"{twice_as_fast}{twice_as_fast}Hi</prosody></prosody>")

    assert (only.prosody.rate, only.prosody.pitch_semitones) == (2.0, 12.0)


@pytest.mark.parametrize(
    ("level", "louder", "slower"),
    [("strong", True, True), ("moderate", True, True), ("reduced", False, False)],
)
def test_render_ssml_maps_emphasis_to_modest_prosody(level, louder, slower):
    (only,) = render(f'<emphasis level="{level}">Hi</emphasis>')

    assert (only.prosody.volume_db > 0, only.prosody.rate < 1) == (louder, slower)
    assert 0.8 <= only.prosody.rate <= 1.2
    assert abs(only.prosody.volume_db) <= 6


def test_render_ssml_starts_a_new_segment_when_prosody_changes():
    segments = render('I am <emphasis level="strong">really</emphasis> happy.')

    assert [segment.text for segment in segments] == ["I am", "really", "happy."]


def test_render_ssml_sets_the_segment_language_from_lang():
    hello, bonjour = render('Hello. <lang xml:lang="fr-FR">Bonjour.</lang>')

    assert (hello.lang, bonjour.lang) == (None, "fr-FR")


def test_render_ssml_sets_the_segment_language_from_p():
    (only,) = render('<p xml:lang="de-DE">Hallo.</p>')

    assert only.lang == "de-DE"


def test_render_ssml_does_not_normalise_text_in_another_language():
    (only,) = render('<lang xml:lang="fr-FR">Il a 5 ans.</lang>')

    assert only.text == "Il a 5 ans."


def test_render_ssml_normalises_by_the_language_of_speak():
    (only,) = render_ssml(parse_ssml('<speak xml:lang="de-DE">Er ist 5 Jahre alt.</speak>'))

    assert (only.text, only.lang) == ("Er ist 5 Jahre alt.", None)


def test_render_ssml_never_exceeds_max_chars():
    body = "<p>" + ", ".join(["a clause that goes on"] * 100) + ".</p>"

    segments = render(body, max_chars=120)

    assert len(segments) > 1
    assert all(len(segment.text) <= 120 for segment in segments)


def test_parse_ssml_raises_only_invalid_ssml_on_mangled_documents():
    rng = random.Random(20240315)
    valid = (
        '<speak><p>It costs <say-as interpret-as="cardinal">5</say-as> &amp; <break time="1s"/>'
        '<prosody rate="80%">more</prosody> <sub alias="x">y</sub></p></speak>'
    )

    for _ in range(1000):
        mangled = list(valid)
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(mangled))
            mangled[position] = rng.choice('<>/&;"=x5 \n' + chr(rng.randint(0, 0x10FFFF)))
        try:
            render_ssml(parse_ssml("".join(mangled)))
        except InvalidSsml:
            pass
