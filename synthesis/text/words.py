"""Spoken English forms of numbers, dates, times and digit strings.

Shared by the normaliser and SSML <say-as>, so "3rd" or "2024-03-15" read the same way in
both. Number words come from num2words; its British "and"/commas are removed because the
engines turn every comma into a pause ("one thousand, two hundred" would stutter).
"""

import re
from functools import lru_cache

from num2words import num2words

# Longer digit strings are identifiers (order numbers, card numbers), not quantities.
MAX_CARDINAL_DIGITS = 15

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

_DIGIT_WORDS = {str(digit): num2words(digit) for digit in range(10)}
_DIGITS = re.compile(r"[0-9]+")
_NUMBER = re.compile(r"(?P<sign>[-+])?(?P<int>[0-9]*)(?:\.(?P<frac>[0-9]+))?")


def _american(words: str) -> str:
    return words.replace(",", "").replace(" and ", " ").replace("oh-", "oh ")


@lru_cache(maxsize=4096)
def cardinal(value: int) -> str:
    return _american(num2words(value))


def ordinal(value: int) -> str:
    if value < 0:
        return "minus " + ordinal(-value)
    return _american(num2words(value, to="ordinal"))


def digits(text: str) -> str:
    """Every ASCII digit of `text` read one by one: "0042" -> "zero zero four two"."""
    return " ".join(_DIGIT_WORDS[char] for char in text if char in _DIGIT_WORDS)


def integer(text: str) -> str:
    """An unsigned digit string as a quantity; ids and zero-padded ones are read digit by digit."""
    text = text.replace(",", "")
    if len(text) > MAX_CARDINAL_DIGITS or (len(text) > 1 and text.startswith("0")):
        return digits(text)
    return cardinal(int(text))


def number(text: str) -> str:
    """A written number such as "-1,234.5", ".5" or "+3" in words."""
    match = _NUMBER.fullmatch(text.replace(",", ""))
    if match is None or not (match["int"] or match["frac"]):
        raise ValueError(f"not a number: {text!r}")
    words = []
    if match["sign"] == "-":
        words.append("minus")
    elif match["sign"] == "+":
        words.append("plus")
    if match["int"]:
        words.append(integer(match["int"]))
    if match["frac"]:
        words += ["point", digits(match["frac"])]
    return " ".join(words)


@lru_cache(maxsize=1024)
def year(value: int) -> str:
    """1999 -> "nineteen ninety-nine", 2005 -> "two thousand five", 2024 -> "twenty twenty-four"."""
    if 1000 <= value <= 2099 and not 2000 <= value <= 2009:
        return _american(num2words(value, to="year"))
    return cardinal(value)


def two_digit_year(text: str) -> str:
    """The '24 of 3/15/24: "twenty-four"; "05" -> "oh five"."""
    if text.startswith("0") and len(text) == 2:
        return "oh " + _DIGIT_WORDS[text[1]] if text != "00" else "double oh"
    return cardinal(int(text))


def plural_of_number(words: str) -> str:
    """Decades: "nineteen ninety" -> "nineteen nineties", "two thousand" -> "two thousands"."""
    head, _, last = words.rpartition(" ")
    last = last[:-1] + "ies" if last.endswith("y") else last + "s"
    return f"{head} {last}" if head else last


def fraction(numerator: int, denominator: int) -> str:
    """3/4 -> "three quarters", 1/2 -> "one half", 5/8 -> "five eighths"; odd ones "x over y"."""
    if denominator == 0 or (denominator > 100 and denominator not in (1000, 1_000_000)):
        return f"{cardinal(numerator)} over {cardinal(denominator)}"
    if denominator == 1:
        return f"{cardinal(numerator)} over one"
    if denominator == 2:
        name = "half"
    elif denominator == 4:
        name = "quarter"
    else:
        name = ordinal(denominator)
    if numerator != 1:
        name = "halves" if name == "half" else name + "s"
    return f"{cardinal(numerator)} {name}"


def mixed_fraction(whole: int, numerator: int, denominator: int) -> str:
    """2 1/2 -> "two and a half", 3 2/3 -> "three and two thirds"."""
    part = fraction(numerator, denominator)
    if numerator == 1 and " over " not in part:
        part = "a " + part.split(" ", 1)[1]
    return f"{cardinal(whole)} and {part}"


def date(
    year_text: str | None, month: int | None, day: int | None, *, day_first: bool = False
) -> str:
    """Month first, "March fifteenth, twenty twenty-four", or "the fifteenth of March, ..."."""
    if month is not None and not 1 <= month <= 12:
        raise ValueError(f"no month {month}")
    if day is not None and not 1 <= day <= 31:
        raise ValueError(f"no day {day}")
    spoken_year = None
    if year_text:
        spoken_year = year(int(year_text)) if len(year_text) > 2 else two_digit_year(year_text)
    month_name = MONTHS[month - 1] if month else None
    if month_name and day:
        head = (
            f"the {ordinal(day)} of {month_name}" if day_first else f"{month_name} {ordinal(day)}"
        )
        return f"{head}, {spoken_year}" if spoken_year else head
    if month_name:
        return f"{month_name} {spoken_year}" if spoken_year else month_name
    if day:
        return f"the {ordinal(day)}"
    if spoken_year:
        return spoken_year
    raise ValueError("empty date")


def time(hour: int, minute: int, second: int | None = None, meridiem: str | None = None) -> str:
    """Clock times as listeners say them and speech recognisers write them back.

    12-hour: "three thirty p m", "ten a m", "nine o'clock". 24-hour (hour 13–23):
    "fourteen oh five", "fourteen hundred". Midnight hours read as "twelve ... a m".
    """
    if not (0 <= hour <= 23 and 0 <= minute <= 59 and (second is None or 0 <= second <= 59)):
        raise ValueError(f"no time {hour}:{minute}")
    if meridiem is None and hour == 0:
        hour, meridiem = 12, "am"
    words = [cardinal(hour)]
    if minute == 0:
        if meridiem is None:
            words.append("hundred" if hour > 12 else "o'clock")
    elif minute < 10:
        words += ["oh", cardinal(minute)]
    else:
        words.append(cardinal(minute))
    if second:
        words += ["and", cardinal(second), "second" if second == 1 else "seconds"]
    if meridiem:
        words.append("a m" if meridiem.lower().startswith("a") else "p m")
    return " ".join(words)


def _digit_groups(run: str) -> list[str]:
    """Split a long unbroken digit run the way numbers are dictated: 3-3-4, else threes."""
    if len(run) <= 4:
        return [run]
    if len(run) == 10:
        return [run[:3], run[3:6], run[6:]]
    if len(run) == 11 and run.startswith("1"):
        return [run[:1], run[1:4], run[4:7], run[7:]]
    head = len(run) - 4 if len(run) % 3 == 1 else len(run) - (len(run) % 3 or 3)
    return [*_digit_groups(run[:head]), run[head:]] if head > 0 else [run]


def identifier(text: str) -> str:
    """Room, flight and gate numbers as people say them: 447 "four forty-seven",
    1204 "twelve oh four", 1200 "twelve hundred"."""
    if len(text) not in (3, 4) or not text.isdigit() or text[0] == "0":
        return integer(text)
    head, tail = text[:-2], text[-2:]
    if tail == "00":
        return f"{cardinal(int(head))} hundred"
    tail_words = f"oh {cardinal(int(tail[1]))}" if tail[0] == "0" else cardinal(int(tail))
    return f"{cardinal(int(head))} {tail_words}"


def telephone(text: str) -> str:
    """Digits one by one, groups separated by commas so engines pause between them."""
    groups = [group for run in _DIGITS.findall(text) for group in _digit_groups(run)]
    if not groups:
        raise ValueError("no digits")
    spoken = ", ".join(digits(group) for group in groups)
    return "plus " + spoken if text.lstrip().startswith("+") else spoken


_SPELLED_SYMBOLS = {
    ".": "dot",
    "-": "dash",
    "_": "underscore",
    "@": "at",
    "/": "slash",
    "+": "plus",
    "#": "hash",
    "&": "and",
    "%": "percent",
    "*": "star",
    ":": "colon",
}


def spell(text: str) -> str:
    """Character by character: letters as upper-case letter names, digits as words."""
    spoken = []
    for char in text:
        if char.isspace():
            continue
        if char in _DIGIT_WORDS:
            spoken.append(_DIGIT_WORDS[char])
        elif char.isalpha():
            spoken.append(char.upper())
        else:
            spoken.append(_SPELLED_SYMBOLS.get(char, char))
    return " ".join(spoken)
