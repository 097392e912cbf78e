import random

import pytest

from synthesis.text import words
from synthesis.text.normalize import normalize_text

CARDINALS = [
    ("1,234,567", "one million two hundred thirty-four thousand five hundred sixty-seven"),
    ("I have 42 apples", "I have forty-two apples"),
    ("-42 is negative", "minus forty-two is negative"),
    ("a drop to -3", "a drop to minus three"),
    ("Room 101", "Room one oh one"),
    ("Agent 007", "Agent zero zero seven"),
    ("1,2,3", "one, two, three"),
    ("4K video", "four K video"),
]
ORDINALS = [
    ("the 1st place", "the first place"),
    ("her 22nd birthday", "her twenty-second birthday"),
    ("the 103rd floor", "the one hundred third floor"),
    ("the 21st century", "the twenty-first century"),
]
DECIMALS = [
    ("3.14", "three point one four"),
    ("0.5", "zero point five"),
    ("about .5 of it", "about point five of it"),
    ("1,234.56", "one thousand two hundred thirty-four point five six"),
    ("version 1.2.3", "version one point two point three"),
    ("host 192.168.1.1", "host one hundred ninety-two dot one hundred sixty-eight dot one dot one"),
]
FRACTIONS = [
    ("1/2", "one half"),
    ("3/4", "three quarters"),
    ("1/3", "one third"),
    ("5/8", "five eighths"),
    ("2 1/2 cups", "two and a half cups"),
    ("3 2/3", "three and two thirds"),
    ("½ cup", "one half cup"),
    ("open 24/7", "open twenty-four seven"),
]
PERCENTAGES = [
    ("50%", "fifty percent"),
    ("12.5%", "twelve point five percent"),
    ("+5%", "plus five percent"),
    ("10-20%", "ten to twenty percent"),
]
CURRENCY = [
    ("$3.50", "three dollars and fifty cents"),
    ("€1.2 million", "one point two million euros"),
    ("£5", "five pounds"),
    ("$0.99", "ninety-nine cents"),
    ("$1", "one dollar"),
    ("$1.01", "one dollar and one cent"),
    ("$10.00", "ten dollars"),
    ("£0.50", "fifty pence"),
    ("€3.50", "three euros and fifty cents"),
    ("$1,000,000", "one million dollars"),
    ("$5k", "five thousand dollars"),
    ("$2bn", "two billion dollars"),
    ("-$5", "minus five dollars"),
    ("5€", "five euros"),
    ("100 USD", "one hundred dollars"),
    ("¥100", "one hundred yen"),
]
DATES = [
    ("2024-03-15", "March fifteenth, twenty twenty-four"),
    ("March 15, 2024", "March fifteenth, twenty twenty-four"),
    ("15 March 2024", "the fifteenth of March, twenty twenty-four"),
    ("03/15/2024", "March fifteenth, twenty twenty-four"),
    ("15/03/2024", "the fifteenth of March, twenty twenty-four"),
    ("Jan. 3, 2020", "January third, twenty twenty"),
    ("on March 5th", "on March fifth"),
    ("the 5th of May", "the fifth of May"),
    ("2024-03-15T10:00", "March fifteenth, twenty twenty-four at ten o'clock"),
]
TIMES = [
    ("3:30 pm", "three thirty p m"),
    ("10 a.m.", "ten a m."),
    ("at 10am", "at ten a m"),
    ("14:05", "fourteen oh five"),
    ("14:00", "fourteen hundred"),
    ("9:00", "nine o'clock"),
    ("00:30", "twelve thirty a m"),
    ("23:59:59", "twenty-three fifty-nine and fifty-nine seconds"),
    ("from 9am-5pm", "from nine a m to five p m"),
]
YEARS = [
    ("It was 1999.", "It was nineteen ninety-nine."),
    ("In 2005 we left", "In two thousand five we left"),
    ("in 2024", "in twenty twenty-four"),
    ("The 2024 report", "The twenty twenty-four report"),
    ("since 1905", "since nineteen oh five"),
    ("1999-2005", "nineteen ninety-nine to two thousand five"),
    ("the 1990s", "the nineteen nineties"),
    ("the '80s", "the eighties"),
    ("2024 employees", "two thousand twenty-four employees"),
]
PHONES = [
    ("(555) 123-4567", "five five five, one two three, four five six seven"),
    ("+1 555 123 4567", "plus one, five five five, one two three, four five six seven"),
    ("555-123-4567", "five five five, one two three, four five six seven"),
    ("+44 20 7946 0958", "plus four four, two zero, seven nine four six, zero nine five eight"),
]
UNITS = [
    ("1 km", "one kilometer"),
    ("5 kg", "five kilograms"),
    ("60 km/h", "sixty kilometers per hour"),
    ("70 mph", "seventy miles per hour"),
    ("2 m", "two meters"),
    ("30 cm", "thirty centimeters"),
    ("5mm", "five millimeters"),
    ("1 g", "one gram"),
    ("500 mg", "five hundred milligrams"),
    ("2 lb", "two pounds"),
    ("8 oz", "eight ounces"),
    ("-5 °C", "minus five degrees Celsius"),
    ("1 °C", "one degree Celsius"),
    ("72°F", "seventy-two degrees Fahrenheit"),
    ("16 GB", "sixteen gigabytes"),
    ("512 MB", "five hundred twelve megabytes"),
    ("250 ms", "two hundred fifty milliseconds"),
    ("30 s", "thirty seconds"),
    ("1 min", "one minute"),
    ("24 h", "twenty-four hours"),
    ("1 L", "one liter"),
    ("250 ml", "two hundred fifty milliliters"),
    ("5-10 kg", "five to ten kilograms"),
    ("10.5 kg", "ten point five kilograms"),
]
ABBREVIATIONS = [
    ("Dr. Smith", "Doctor Smith"),
    ("Mr. Jones", "Mister Jones"),
    ("Mrs. Lee", "Missus Lee"),
    ("Ms. Park", "Miz Park"),
    ("St. Louis", "Saint Louis"),
    ("I live at 123 Main St.", "I live at one hundred twenty-three Main Street."),
    ("Sunset Dr. is closed", "Sunset Drive is closed"),
    ("Apt. 4", "Apartment four"),
    ("5th Ave.", "fifth Avenue."),
    ("e.g. this", "for example this"),
    ("i.e. that", "that is that"),
    ("cats vs. dogs", "cats versus dogs"),
    ("John Smith Jr. arrived", "John Smith Junior arrived"),
    ("Fred Sr. left", "Fred Senior left"),
    ("See No. 5", "See number five"),
    ("approx. 20 people", "approximately twenty people"),
    ("apples, pears, etc.", "apples, pears, et cetera."),
]
ADDRESSES = [
    ("https://example.com/docs", "example dot com slash docs"),
    ("Visit https://www.example.com/docs.", "Visit example dot com slash docs."),
    ("see example.org", "see example dot org"),
    ("jane.doe@example.com", "jane dot doe at example dot com"),
    (
        "Write to support-team@mail.example.co.uk.",
        "Write to support dash team at mail dot example dot co dot uk.",
    ),
]
SYMBOLS = [
    ("Tom & Jerry", "Tom and Jerry"),
    ("#1 hit", "number one hit"),
    ("2 + 2", "two plus two"),
    ("C++", "C plus plus"),
    ("meet @ noon", "meet at noon"),
    ("x=5", "x equals five"),
    ("**bold** and _italic_", "bold and italic"),
    ("#python rocks", "hashtag python rocks"),
]
# Found by the quality benchmark (bench/quality.py).
BENCHMARK_FINDINGS = [
    ("They arrived on 05/06/2022.", "They arrived on May sixth, twenty twenty-two."),
    ("Gen. Grant won.", "General Grant won."),
    ("Open Mon. to Fri., 8 am to 6 pm.", "Open Monday to Friday, eight a m to six p m."),
    ("He drove 150 mi today.", "He drove one hundred fifty miles today."),
    ("Add 3 tbsp of butter.", "Add three tablespoons of butter."),
    ("Room 1204 is free.", "Room twelve oh four is free."),
    ("Flight 447 landed.", "Flight four forty-seven landed."),
    ("Gate 1200 is closed.", "Gate twelve hundred is closed."),
    ("Bus 12 is late.", "Bus twelve is late."),
    ("The room 1204.5 is odd.", "The room one thousand two hundred four point five is odd."),
]
CASES = (
    BENCHMARK_FINDINGS + CARDINALS + ORDINALS + DECIMALS + FRACTIONS + PERCENTAGES + CURRENCY + DATES + TIMES + YEARS
    + PHONES + UNITS + ABBREVIATIONS + ADDRESSES + SYMBOLS
)  # fmt: skip


@pytest.mark.parametrize(("written", "spoken"), CASES)
def test_normalize_text_speaks_english(written, spoken):
    assert normalize_text(written) == spoken


def test_normalize_text_collapses_whitespace():
    assert normalize_text("  spaced \t out\n\ntext  ") == "spaced out text"


def test_normalize_text_leaves_plain_words_alone():
    assert normalize_text("Hello, world!") == "Hello, world!"


def test_normalize_text_returns_empty_for_empty_input():
    assert normalize_text("") == ""


def test_normalize_text_drops_symbols_that_have_nothing_to_say():
    assert normalize_text("*** ~~~ ***") == ""


@pytest.mark.parametrize("language", ["de", "fr-FR", "ja", "es_ES"])
def test_normalize_text_only_cleans_whitespace_outside_english(language):
    assert (
        normalize_text("  Es kostet  $3.50 am 15.03.2024 ", language)
        == "Es kostet $3.50 am 15.03.2024"
    )


@pytest.mark.parametrize("language", ["en", "en-US", "en_GB", "EN"])
def test_normalize_text_treats_english_variants_as_english(language):
    assert normalize_text("5 kg", language) == "five kilograms"


def test_normalize_text_removes_control_characters():
    assert normalize_text("bell\x07 and\x00 null") == "bell and null"


def test_normalize_text_keeps_a_token_as_written_when_its_rule_fails(monkeypatch):
    def broken(value):
        raise RuntimeError("bug in a rule")

    monkeypatch.setattr(words, "cardinal", broken)

    assert normalize_text("I have 42 apples") == "I have 42 apples"


def test_normalize_text_never_raises_on_random_unicode():
    rng = random.Random(20240315)
    tricky = "0123456789$€£%°/.,:;-+@#&*_()[]<>½… \n\t"

    for _ in range(2000):
        text = "".join(
            rng.choice(tricky) if rng.random() < 0.6 else chr(rng.randint(0, 0x10FFFF))
            for _ in range(rng.randint(0, 60))
        )
        assert isinstance(normalize_text(text), str)
