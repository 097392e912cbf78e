"""What <say-as> says: its content read by `interpret-as` (English) instead of normalised.

Each reader raises ValueError with a short reason when the content does not fit, which the
SSML parser turns into an InvalidSsml error pointing at the element.
"""

import re

from synthesis.text import words

INTERPRET_AS = frozenset(
    {
        "characters",
        "spell-out",
        "cardinal",
        "number",
        "ordinal",
        "digits",
        "date",
        "time",
        "telephone",
    }
)
DATE_FORMATS = frozenset({"mdy", "dmy", "ymd", "md", "dm", "ym", "my", "y", "m", "d"})

_NUMBER = re.compile(r"[-+]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|[-+]?\.[0-9]+")
_ORDINAL = re.compile(r"(?P<num>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:st|nd|rd|th)?", re.IGNORECASE)
_CLOCK = re.compile(
    r"(?P<h>[0-9]{1,2})(?::(?P<m>[0-9]{2}))?(?::(?P<s>[0-9]{2}))?\s*(?P<mer>[AaPp]\.?\s?[Mm]\.?)?"
)
_DIGITS = re.compile(r"[0-9\s-]*[0-9][0-9\s-]*")
_DATE_PART = re.compile(r"[0-9]+|[^\W\d_]+")
_MONTHS = {name.lower(): index for index, name in enumerate(words.MONTHS, start=1)} | {
    name[:3].lower(): index for index, name in enumerate(words.MONTHS, start=1)
}


def say_as_english(interpret_as: str, content: str, date_format: str | None) -> str:
    if interpret_as in ("characters", "spell-out"):
        return words.spell(content)
    if interpret_as in ("cardinal", "number"):
        if not _NUMBER.fullmatch(content):
            raise ValueError("expected a number such as 1234 or -3.5")
        return words.number(content)
    if interpret_as == "ordinal":
        match = _ORDINAL.fullmatch(content)
        if match is None:
            raise ValueError("expected a whole number such as 3 or 3rd")
        number = match["num"].replace(",", "")
        if len(number) > words.MAX_CARDINAL_DIGITS:
            raise ValueError("the number is too large")
        return words.ordinal(int(number))
    if interpret_as == "digits":
        if not _DIGITS.fullmatch(content):
            raise ValueError("expected digits")
        return words.digits(content)
    if interpret_as == "telephone":
        return words.telephone(content)
    if interpret_as == "time":
        match = _CLOCK.fullmatch(content)
        if match is None:
            raise ValueError('expected a time such as "14:05" or "3:30 pm"')
        meridiem = match["mer"][0] if match["mer"] else None
        if meridiem and not 1 <= int(match["h"]) <= 12:
            raise ValueError("a 12-hour time needs an hour from 1 to 12")
        return words.time(
            int(match["h"]), int(match["m"] or 0), int(match["s"]) if match["s"] else None, meridiem
        )
    return _say_date(content, date_format)


def _say_date(content: str, date_format: str | None) -> str:
    parts = _DATE_PART.findall(content)
    date_format = date_format or _default_date_format(parts)
    if len(parts) != len(date_format):
        raise ValueError(f'expected {len(date_format)} parts for format "{date_format}"')
    fields = dict(zip(date_format, parts, strict=True))
    year_text, month_text, day_text = fields.get("y"), fields.get("m"), fields.get("d")
    if year_text is not None and not (year_text.isdigit() and len(year_text) in (2, 4)):
        raise ValueError("the year must have 2 or 4 digits")
    month = None
    if month_text is not None:
        month = int(month_text) if month_text.isdigit() else _MONTHS.get(month_text.lower())
        if month is None:
            raise ValueError(f'"{month_text}" is not a month')
    if day_text is not None and not day_text.isdigit():
        raise ValueError(f'"{day_text}" is not a day')
    day = int(day_text) if day_text else None
    return words.date(year_text, month, day, day_first=date_format.startswith("d"))


def _default_date_format(parts: list[str]) -> str:
    """ISO order for "2024-03-15", day first for "15 March 2024", else US month first."""
    if len(parts) == 3:
        if len(parts[0]) == 4:
            return "ymd"
        return "dmy" if parts[1].isalpha() else "mdy"
    if len(parts) == 2:
        if len(parts[1]) == 4:
            return "my"
        return "dm" if parts[1].isalpha() else "md"
    return "y" if len(parts) == 1 and parts[0].isdigit() else "m"


def say_as_any_language(interpret_as: str, content: str) -> str:
    """Outside English only language-neutral readings: characters and digits one by one."""
    if interpret_as in ("characters", "spell-out", "digits"):
        return " ".join(char for char in content if not char.isspace())
    if interpret_as == "telephone":
        return ", ".join(" ".join(group) for group in re.findall(r"[0-9]+", content)) or content
    return content
