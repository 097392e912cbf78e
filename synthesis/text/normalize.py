"""Text normalisation: turn what people write into what a speech engine should say.

English only for now. Each rule is a regular expression compiled once plus a function that
speaks one match; rules run in a fixed order because earlier, more specific shapes (a URL,
a phone number, a date) contain pieces that later, generic ones (a number) would misread.
"""

import logging
import re
from collections.abc import Callable

from synthesis.text import words

logger = logging.getLogger(__name__)

Replacer = Callable[[re.Match[str]], str]

# A number as written: optional thousands separators and decimal part.
_NUM = r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?"
_MONTH_NAMES = {name.lower(): index for index, name in enumerate(words.MONTHS, start=1)}
_MONTH_NAMES.update(
    {name[:3].lower(): index for index, name in enumerate(words.MONTHS, start=1)} | {"sept": 9}
)
_MONTH = (
    r"(?P<mon>January|February|March|April|May|June|July|August|September|October|November"
    r"|December|(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?)"
)

_TRANSLATE = str.maketrans(
    {
        "\u2212": "-",  # minus sign
        "\u2010": "-",  # hyphen
        "\u2011": "-",  # non-breaking hyphen
        "\u2026": "...",
        "\u2103": "°C",
        "\u2109": "°F",
        "\u00a0": " ",
        "\u200b": "",
        "\ufeff": "",
    }
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SPACES = re.compile(r"\s+")
_HAS_DIGIT = re.compile(r"[0-9]")


def is_english(language: str) -> bool:
    return language.lower().replace("_", "-").split("-", 1)[0] in ("en", "")


# Context helpers look at a bounded window so a huge input stays linear.
_WINDOW = 64


def _at_end(match: re.Match[str]) -> bool:
    end = match.end()
    rest = match.string[end : end + _WINDOW]
    return not rest.strip(" \"')]}”’") and end + _WINDOW >= len(match.string)


def _prev_word(match: re.Match[str]) -> str:
    start = match.start()
    head = match.string[max(0, start - _WINDOW) : start].rstrip(" ,")
    return head[head.rfind(" ") + 1 :]


def _next_word(match: re.Match[str]) -> str:
    end = match.end()
    tail = match.string[end : end + _WINDOW].lstrip()
    space = tail.find(" ")
    return tail if space < 0 else tail[:space]


def _is_sentence_start(match: re.Match[str], word: str) -> bool:
    """Whether `word` (just before the match) opens its sentence."""
    start = match.start()
    head = match.string[max(0, start - _WINDOW) : start].rstrip(" ,")
    before = head[: len(head) - len(word)].rstrip()
    return (not before and start <= _WINDOW) or (bool(before) and before[-1] in ".!?:;\"'(“")


# --- URLs and e-mail addresses ------------------------------------------------------------

_URL_SYMBOLS = {
    ".": " dot ",
    "/": " slash ",
    "-": " dash ",
    "_": " underscore ",
    ":": " colon ",
    "?": " question mark ",
    "=": " equals ",
    "&": " and ",
    "#": " hash ",
    "%": " percent ",
    "+": " plus ",
    "~": " tilde ",
    "@": " at ",
}
_URL_TOKEN = re.compile(r"[0-9]+|[^\W_0-9]+|.", re.UNICODE)
_TRAILING = ".,;:!?)]}'\"”’"
_URL_PREFIX = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?:www\.)?")
_TLDS = "com|org|net|edu|gov|io|dev|ai|app|co|uk|de|fr|es|it|nl|eu|us|ca|au|info|biz|me|tv"


def _speak_address(address: str) -> str:
    spoken = []
    for token in _URL_TOKEN.findall(address):
        if token[0].isdigit():
            spoken.append(words.digits(token) if len(token) > 4 else words.cardinal(int(token)))
        elif token[0].isalpha():
            spoken.append(token)
        else:
            spoken.append(_URL_SYMBOLS.get(token, " "))
    return " ".join("".join(f" {part} " for part in spoken).split())


def _with_trailing(match: re.Match[str], speak: Callable[[str], str]) -> str:
    """Speak the match minus sentence punctuation that the pattern swallowed at its end."""
    text = match.group(0)
    core = text.rstrip(_TRAILING)
    return speak(core) + text[len(core) :] if core else text


def _url(match: re.Match[str]) -> str:
    # Listeners know a web address without "https://" and "www." read out.
    return _with_trailing(match, lambda url: _speak_address(_URL_PREFIX.sub("", url).rstrip("/")))


def _email(match: re.Match[str]) -> str:
    return _speak_address(match.group(0))


_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])"
)
_URL = re.compile(
    r"(?<![\w@])(?:(?:https?|ftp)://|www\.)[^\s<>\"]+"
    rf"|(?<![\w@.-])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:{_TLDS})(?:/[^\s<>\"]*)?(?![\w@-])"
)

# --- Abbreviations ------------------------------------------------------------------------

_ALWAYS = {
    "Mr.": "Mister",
    "Mrs.": "Missus",
    "Ms.": "Miz",
    "Prof.": "Professor",
    "Capt.": "Captain",
    "Sgt.": "Sergeant",
    "Lt.": "Lieutenant",
    "Gen.": "General",
    "Col.": "Colonel",
    "Maj.": "Major",
    "Cpl.": "Corporal",
    "Pres.": "President",
    "Rep.": "Representative",
    "Hon.": "Honorable",
    "Gov.": "Governor",
    "Sen.": "Senator",
    "Rev.": "Reverend",
    "Mt.": "Mount",
    "Apt.": "Apartment",
    "e.g.": "for example",
    "i.e.": "that is",
    "vs.": "versus",
    "vs": "versus",
    "approx.": "approximately",
    "a.k.a.": "also known as",
}
# These also end sentences ("... and so on, etc."), so the full stop is kept at the end.
_TERMINAL = {
    "etc.": "et cetera",
    "Inc.": "Incorporated",
    "Ltd.": "Limited",
    "Corp.": "Corporation",
    "Co.": "Company",
    "Dept.": "Department",
    "Ave.": "Avenue",
    "Blvd.": "Boulevard",
    "Rd.": "Road",
    "Ste.": "Suite",
    "Jr.": "Junior",
    "Sr.": "Senior",
    # Weekdays ("Sun." is left alone: it is as likely the star at a sentence end).
    "Mon.": "Monday",
    "Tue.": "Tuesday",
    "Tues.": "Tuesday",
    "Wed.": "Wednesday",
    "Thu.": "Thursday",
    "Thur.": "Thursday",
    "Thurs.": "Thursday",
    "Fri.": "Friday",
    "Sat.": "Saturday",
}
_BEFORE_NUMBER = {
    "No.": "number",
    "Fig.": "figure",
    "Vol.": "volume",
    "ca.": "circa",
    "#": "number",
}


def _abbreviation(match: re.Match[str]) -> str:
    text = match.group(0)
    if text in _ALWAYS:
        return _ALWAYS[text]
    stop = "." if _at_end(match) or _next_word(match)[:1].isupper() else ""
    return _TERMINAL[text] + stop


_DETERMINERS = {"the", "a", "an", "my", "our", "your", "his", "her", "their", "this", "that"}


def _address_or_title(match: re.Match[str], title: str, place: str) -> str:
    """St./Dr. before a name is Saint/Doctor; after a street name or number, Street/Drive."""
    previous, following = _prev_word(match), _next_word(match)
    place = place + ("." if _at_end(match) else "")
    if previous[:1].isdigit() or (
        previous[:1].isupper() and not _is_sentence_start(match, previous)
    ):
        return place
    if following[:1].isupper():
        return title
    # A title is always followed by a name: "Sunset Dr. is closed" is a street.
    return place if previous[:1].isupper() and previous.lower() not in _DETERMINERS else title


def _before_number(match: re.Match[str]) -> str:
    return _BEFORE_NUMBER[match["abbr"]] + " "


_ABBREVIATION = re.compile(
    r"(?<![\w.])(?:"
    + "|".join(re.escape(key) for key in sorted(_ALWAYS | _TERMINAL, key=len, reverse=True))
    + r")(?![\w])"
)
_ST = re.compile(r"(?<![\w.])St\.(?!\w)")
_DR = re.compile(r"(?<![\w.])Dr\.(?!\w)")
_NUMBER_SIGN = re.compile(r"(?<![\w.])(?P<abbr>No\.|Fig\.|Vol\.|ca\.|#)\s?(?=[0-9])")

# --- Phone numbers, dates, times ------------------------------------------------------------

_PHONE = re.compile(
    r"(?<![\w+])(?:\+?1[\s.-]?)?\([0-9]{3}\)\s?[0-9]{3}[\s.-][0-9]{4}(?![\w-])"
    r"|(?<![\w+.,-])(?:\+?1[\s.-])?[0-9]{3}(?P<sep>[.\- ])[0-9]{3}(?P=sep)[0-9]{4}(?![\w-])"
    r"|(?<![\w+])\+[0-9]{1,3}(?:[\s.-]?\([0-9]{1,4}\)|[\s.-][0-9]{1,5}){2,6}(?![\w-])"
    r"|(?<![\w+])\+[0-9]{7,15}(?![\w-])"
)


def _phone(match: re.Match[str]) -> str:
    count = sum(char.isdigit() for char in match.group(0))
    if not 7 <= count <= 15:
        return match.group(0)
    return words.telephone(match.group(0))


_ISO_DATE = re.compile(
    r"(?<![\w/.-])(?P<y>[12][0-9]{3})-(?P<m>0[1-9]|1[0-2])-(?P<d>0[1-9]|[12][0-9]|3[01])"
    r"(?:(?P<t>T)(?=[0-9]{2}:[0-9]{2})|(?![\w-]))"
)
_NUMERIC_DATE = re.compile(
    r"(?<![\w/.-])(?P<a>[0-9]{1,2})(?P<sep>[/.-])(?P<b>[0-9]{1,2})(?P=sep)(?P<y>[0-9]{4}|[0-9]{2})"
    r"(?![\w/-]|\.[0-9])"
)
_DATE_YEAR = r"(?:,?\s+(?P<y>[12][0-9]{3})(?![0-9]))?"
_MONTH_FIRST = re.compile(rf"\b{_MONTH}\s+(?P<d>[0-9]{{1,2}})(?:st|nd|rd|th)?(?![0-9]){_DATE_YEAR}")
_DAY_FIRST = re.compile(
    rf"(?<![\w.,])(?P<d>[0-9]{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}{_DATE_YEAR}(?!\w)"
)


def _iso_date(match: re.Match[str]) -> str:
    spoken = words.date(match["y"], int(match["m"]), int(match["d"]))
    return spoken + " at " if match["t"] else spoken


def _numeric_date(match: re.Match[str]) -> str:
    if match["sep"] != "/" and len(match["y"]) == 2:
        return match.group(0)  # "3.11.14" is a version, "10-20-30" a list
    first, second = int(match["a"]), int(match["b"])
    # US order (month first) unless that is impossible; dotted dates are European.
    day_first = (match["sep"] == "." and second <= 12) or first > 12
    month, day = (second, first) if day_first else (first, second)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match.group(0)
    return words.date(match["y"], month, day, day_first=day_first)


def _month_date(match: re.Match[str], *, day_first: bool) -> str:
    day = int(match["d"])
    if not 1 <= day <= 31:
        return match.group(0)
    month = _MONTH_NAMES[match["mon"].rstrip(".").lower()]
    spoken = words.date(match["y"], month, day, day_first=day_first)
    return spoken.removeprefix("the ") if _prev_word(match).lower() == "the" else spoken


_MERIDIEM = r"(?P<mer>[AaPp]\.?\s?[Mm](?![A-Za-z])\.?)"
_CLOCK = re.compile(
    r"(?<![\w:.,])(?P<h>[01]?[0-9]|2[0-3]):(?P<m>[0-5][0-9])(?::(?P<s>[0-5][0-9]))?(?![0-9:])"
    rf"(?:\s?{_MERIDIEM})?"
)
_HOUR = re.compile(rf"(?<![\w:.,])(?P<h>1[0-2]|0?[1-9])\s?{_MERIDIEM}")


def _time(match: re.Match[str]) -> str:
    meridiem = match["mer"]
    groups = match.groupdict()
    spoken = words.time(
        int(match["h"]),
        int(groups.get("m") or 0),
        int(groups["s"]) if groups.get("s") else None,
        meridiem[0] if meridiem else None,
    )
    # "... at 10 a.m." ends the sentence too: keep its full stop.
    ends = (
        meridiem and meridiem.endswith(".") and (_at_end(match) or _next_word(match)[:1].isupper())
    )
    return spoken + "." if ends else spoken


# --- Money, percentages, units, decades, ranges -------------------------------------------

_CURRENCIES = {
    # symbol or code: (singular, plural, minor singular, minor plural)
    "$": ("dollar", "dollars", "cent", "cents"),
    "USD": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "EUR": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "GBP": ("pound", "pounds", "penny", "pence"),
    "¥": ("yen", "yen", "", ""),
    "JPY": ("yen", "yen", "", ""),
    "₹": ("rupee", "rupees", "", ""),
    "INR": ("rupee", "rupees", "", ""),
}
_SCALES = {
    "thousand": "thousand",
    "k": "thousand",
    "K": "thousand",
    "million": "million",
    "m": "million",
    "M": "million",
    "mn": "million",
    "billion": "billion",
    "bn": "billion",
    "B": "billion",
    "b": "billion",
    "trillion": "trillion",
    "tn": "trillion",
    "T": "trillion",
}
_SCALE = (
    r"(?:\s(?P<scale_word>thousand|million|billion|trillion)\b"
    r"|(?P<scale>k|K|m|M|mn|bn|b|B|tn|T)(?![A-Za-z0-9]))"
)
_MONEY = re.compile(
    rf"(?<![\w.])(?P<sign>-)?(?P<cur>[$€£¥₹]\s?|(?:USD|EUR|GBP|JPY|INR)\s?)(?P<num>{_NUM}){_SCALE}?"
    rf"|(?<![\w.])(?P<sign2>-)?(?P<num2>{_NUM})\s?(?P<cur2>[€£]|(?:USD|EUR|GBP|JPY|INR)\b)"
)


def _money(match: re.Match[str]) -> str:
    symbol = (match["cur"] or match["cur2"]).strip()
    amount = (match["num"] or match["num2"]).replace(",", "")
    singular, plural, minor_one, minor_many = _CURRENCIES[symbol]
    scale = _SCALES.get(match["scale_word"] or match["scale"] or "")
    sign = "minus " if match["sign"] or match["sign2"] else ""
    whole, _, cents = amount.partition(".")
    if scale:
        return f"{sign}{words.number(amount)} {scale} {plural}"
    if len(cents) > 2 or (cents and not minor_many):
        return f"{sign}{words.number(amount)} {plural}"
    major = int(whole or "0")
    minor = int(cents.ljust(2, "0")) if cents else 0
    spoken_major = f"{words.integer(whole or '0')} {singular if major == 1 else plural}"
    if not minor:
        return sign + spoken_major
    spoken_minor = f"{words.cardinal(minor)} {minor_one if minor == 1 else minor_many}"
    return sign + (f"{spoken_major} and {spoken_minor}" if major else spoken_minor)


_PERCENT = re.compile(rf"(?<![\w./])(?P<num>[-+]?{_NUM})\s?%")


def _percent(match: re.Match[str]) -> str:
    return f"{words.number(match['num'])} percent"


_UNITS = {
    # unit: (singular, plural)
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "mph": ("mile per hour", "miles per hour"),
    "m/s": ("meter per second", "meters per second"),
    "km²": ("square kilometer", "square kilometers"),
    "m²": ("square meter", "square meters"),
    "m³": ("cubic meter", "cubic meters"),
    "km": ("kilometer", "kilometers"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "m": ("meter", "meters"),
    "ft": ("foot", "feet"),
    "mi": ("mile", "miles"),
    "kg": ("kilogram", "kilograms"),
    "mg": ("milligram", "milligrams"),
    "g": ("gram", "grams"),
    "lbs": ("pound", "pounds"),
    "lb": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
    "TB": ("terabyte", "terabytes"),
    "GB": ("gigabyte", "gigabytes"),
    "MB": ("megabyte", "megabytes"),
    "KB": ("kilobyte", "kilobytes"),
    "kB": ("kilobyte", "kilobytes"),
    "GHz": ("gigahertz", "gigahertz"),
    "MHz": ("megahertz", "megahertz"),
    "kHz": ("kilohertz", "kilohertz"),
    "Hz": ("hertz", "hertz"),
    "kWh": ("kilowatt hour", "kilowatt hours"),
    "kW": ("kilowatt", "kilowatts"),
    "ms": ("millisecond", "milliseconds"),
    "sec": ("second", "seconds"),
    "s": ("second", "seconds"),
    "min": ("minute", "minutes"),
    "hrs": ("hour", "hours"),
    "hr": ("hour", "hours"),
    "h": ("hour", "hours"),
    "ml": ("milliliter", "milliliters"),
    "mL": ("milliliter", "milliliters"),
    "L": ("liter", "liters"),
    "tbsp": ("tablespoon", "tablespoons"),
    "tsp": ("teaspoon", "teaspoons"),
}
_UNIT = re.compile(
    rf"(?<![\w./])(?P<num>-?{_NUM})\s?(?P<unit>"
    + "|".join(re.escape(unit) for unit in sorted(_UNITS, key=len, reverse=True))
    + r")(?![A-Za-z0-9/²³])\.?"
)


def _unit(match: re.Match[str]) -> str:
    singular, plural = _UNITS[match["unit"]]
    name = singular if match["num"].lstrip("-") == "1" else plural
    spoken = f"{words.number(match['num'])} {name}"
    # The pattern eats an abbreviation dot ("5 min."); give it back when it ends the sentence.
    return spoken + "." if match.group(0).endswith(".") and _at_end(match) else spoken


_DECADE_CUES = {"the", "early", "late", "mid", "mid-"}
_DECADE = re.compile(r"(?<![\w'’])(?:(?P<long>[12][0-9]{2}0)|['’]?(?P<short>[0-9]0))s(?![\w'])")


def _decade(match: re.Match[str]) -> str:
    if match["long"]:
        return words.plural_of_number(words.year(int(match["long"])))
    written_short = match.group(0)[0] in "'’"
    if not written_short and _prev_word(match).lower() not in _DECADE_CUES:
        return match.group(0)  # "50s" is fifty seconds unless it reads like a decade
    return words.plural_of_number(words.cardinal(int(match["short"])))


_RANGE = re.compile(r"(?:(?<=[0-9])|(?<=[0-9][AaPp][Mm]))(?:\s?[–—]\s?|-)(?=[$€£]?[0-9])")

# --- Numbers ------------------------------------------------------------------------------

_ORDINAL = re.compile(
    r"(?<![\w.])(?P<num>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:st|nd|rd|th|ST|ND|RD|TH)(?![A-Za-z0-9])"
)


def _ordinal(match: re.Match[str]) -> str:
    digits = match["num"].replace(",", "")
    if len(digits) > words.MAX_CARDINAL_DIGITS:
        return match.group(0)
    return words.ordinal(int(digits))


_VULGAR = {
    "½": "1/2",
    "⅓": "1/3",
    "⅔": "2/3",
    "¼": "1/4",
    "¾": "3/4",
    "⅕": "1/5",
    "⅛": "1/8",
    "⅜": "3/8",
    "⅝": "5/8",
    "⅞": "7/8",
}
_VULGAR_CHAR = re.compile(r"(?P<whole>[0-9])?(?P<frac>[" + "".join(_VULGAR) + "])")
_FRACTION = re.compile(
    r"(?<![\w/.,])(?:(?P<whole>[0-9]{1,3})\s+)?(?P<num>[0-9]{1,3})[/⁄](?P<den>[0-9]{1,3})"
    r"(?![\w/]|[.,][0-9])"
)


def _vulgar(match: re.Match[str]) -> str:
    fraction = _VULGAR[match["frac"]]
    return f"{match['whole']} {fraction}" if match["whole"] else fraction


def _fraction(match: re.Match[str]) -> str:
    numerator, denominator = int(match["num"]), int(match["den"])
    if match["whole"]:
        return words.mixed_fraction(int(match["whole"]), numerator, denominator)
    if (numerator, denominator) == (24, 7):
        return "twenty-four seven"
    if numerator == denominator == 50:
        return "fifty-fifty"
    return words.fraction(numerator, denominator)


_DOTTED = re.compile(r"(?<![\w.])[0-9]+(?:\.[0-9]+){2,}(?![\w]|\.[0-9])")


def _dotted(match: re.Match[str]) -> str:
    """Versions read "one point two point three"; IPv4 addresses "... dot ..."."""
    parts = match.group(0).split(".")
    joiner = " dot " if len(parts) == 4 and all(len(part) <= 3 for part in parts) else " point "
    return joiner.join(words.integer(part) for part in parts)


_YEAR_CUES = {
    "in", "since", "by", "from", "until", "till", "through", "during", "of", "year", "circa",
    "ca.", "around", "before", "after", "early", "late", "mid", "spring", "summer", "autumn",
    "fall", "winter", "between", "and", "to", "class", "the",
} | set(_MONTH_NAMES)  # fmt: skip
_YEAR = re.compile(r"(?<![\w.,$€£-])(?P<year>1[0-9]{3}|20[0-9]{2})(?![\w%°]|[.,][0-9])")
_YEAR_AFTER = re.compile(
    r"\s*(?:$|[.,;:!?)\]]|(?:AD|BC|BCE|CE)\b|(?:was|is|will|saw|had|has|brought|began|ended)\b"
    r"|(?:to|and|or|through)\s+(?:1[0-9]{3}|20[0-9]{2})\b)"
)


def _year(match: re.Match[str]) -> str:
    previous = _prev_word(match).lower().rstrip(",.")
    if previous in _YEAR_CUES or _YEAR_AFTER.match(match.string, match.end()):
        return words.year(int(match["year"]))
    return words.cardinal(int(match["year"]))


_NUMBER = re.compile(rf"(?:(?<![\w)\]])(?P<sign>-))?(?<![\w.])(?P<num>{_NUM})")
# Numbers that name something rather than count it are read in pairs ("Room twelve oh four").
_IDENTIFIER = re.compile(
    r"\b(?P<noun>(?:[Rr]oom|[Ff]light|[Gg]ate|[Ss]uite|[Pp]latform|[Rr]oute|[Bb]us|[Tt]rack|"
    r"[Hh]ighway|[Ii]nterstate|[Cc]hannel|[Ee]xit|[Ff]loor|[Uu]nit))\s+(?P<num>[1-9][0-9]{2,3})(?![\w.,]?[0-9])"
)
_LEADING_POINT = re.compile(r"(?<![\w.])\.(?P<frac>[0-9]+)")
_DIGIT_RUN = re.compile(r"[0-9]+")


def _identifier(match: re.Match[str]) -> str:
    return f"{match['noun']} {words.identifier(match['num'])}"


def _number(match: re.Match[str]) -> str:
    spoken = words.number(match["num"])
    return "minus " + spoken if match["sign"] else spoken


def _leading_point(match: re.Match[str]) -> str:
    return "point " + words.digits(match["frac"])


def _digit_run(match: re.Match[str]) -> str:
    return f" {words.integer(match.group(0))} "


# --- Symbols and clean-up -----------------------------------------------------------------

_HASHTAG = re.compile(r"(?<![\w&])#(?=[^\W\d_])")
_AT = re.compile(r"(?<!\w)@(?=\w)|(?<=\s)@(?=\s)|^@$")
_SLASH = re.compile(r"(?<=\w)/(?=\w)")
_SPACED_DASH = re.compile(r"(?:^|\s)[-–—]+(?:\s|$)|(?<=\w)—(?=\w)")
_SYMBOLS = {
    "&": " and ",
    "+": " plus ",
    "%": " percent ",
    "=": " equals ",
    "°": " degrees ",
    "×": " times ",
    "$": " dollars ",
    "€": " euros ",
    "£": " pounds ",
    "¥": " yen ",
    "@": " at ",
}
_SYMBOL = re.compile("[" + re.escape("".join(_SYMBOLS)) + "]")
# Markup and decoration that engines would otherwise spell out ("asterisk asterisk").
_DECORATION = re.compile(r"[*_~^`|\\\[\]{}<>•#]+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+(?=[,.;:!?)\]])")
_REPEATED_COMMA = re.compile(r",(?:\s*,)+")
_COMMA_BEFORE_WORD = re.compile(r",(?=[^\W\d_])")
_LEADING_PUNCTUATION = re.compile(r"^[\s,;:.]+")


def _guard(replace: Replacer) -> Replacer:
    """A rule that fails on odd input leaves the match as written instead of failing the job."""

    def guarded(match: re.Match[str]) -> str:
        try:
            spoken = replace(match)
        except Exception:  # noqa: BLE001 - user text must never break synthesis
            logger.warning(
                "normalize_text.rule_failed", extra={"rule": replace.__name__}, exc_info=True
            )
            return match.group(0)
        # Keep words apart where the written form was glued to a letter: "4K" -> "four K".
        text, start, end = match.string, match.start(), match.end()
        if spoken[:1].isalnum() and start and text[start - 1].isalnum():
            spoken = " " + spoken
        if spoken[-1:].isalnum() and end < len(text) and text[end].isalnum():
            spoken += " "
        return spoken

    return guarded


def _rule(
    pattern: re.Pattern[str], replace: Replacer | str
) -> tuple[re.Pattern[str], Replacer | str]:
    return pattern, _guard(replace) if callable(replace) else replace


_ADDRESS_RULES = [_rule(_EMAIL, _email), _rule(_URL, _url)]
_WORD_RULES = [
    _rule(_ABBREVIATION, _abbreviation),
    _rule(_ST, lambda match: _address_or_title(match, "Saint", "Street")),
    _rule(_DR, lambda match: _address_or_title(match, "Doctor", "Drive")),
]
# Rules that only matter when the text has a digit in it.
_NUMBER_RULES = [
    _rule(_NUMBER_SIGN, _before_number),
    _rule(_PHONE, _phone),
    _rule(_ISO_DATE, _iso_date),
    _rule(_NUMERIC_DATE, _numeric_date),
    _rule(_MONTH_FIRST, lambda match: _month_date(match, day_first=False)),
    _rule(_DAY_FIRST, lambda match: _month_date(match, day_first=True)),
    _rule(_RANGE, " to "),
    _rule(_CLOCK, _time),
    _rule(_HOUR, _time),
    _rule(_MONEY, _money),
    _rule(_DECADE, _decade),
    _rule(_PERCENT, _percent),
    _rule(_UNIT, _unit),
    _rule(_ORDINAL, _ordinal),
    _rule(_FRACTION, _fraction),
    _rule(_DOTTED, _dotted),
    _rule(_IDENTIFIER, _identifier),
    _rule(_YEAR, _year),
    _rule(_NUMBER, _number),
    _rule(_LEADING_POINT, _leading_point),
    _rule(_DIGIT_RUN, _digit_run),
]
_SYMBOL_RULES = [
    _rule(_HASHTAG, "hashtag "),
    _rule(_AT, " at "),
    _rule(_SLASH, " slash "),
    _rule(_SPACED_DASH, ", "),
    _rule(_SYMBOL, lambda match: _SYMBOLS[match.group(0)]),
    _rule(_DECORATION, " "),
]


def clean_whitespace(text: str) -> str:
    """Control characters out, every run of whitespace one space, no space at the ends."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()


def tidy(text: str) -> str:
    """One space between words, none before punctuation, no stray commas at the start."""
    text = _SPACES.sub(" ", text)
    text = _SPACE_BEFORE_PUNCTUATION.sub("", text)
    text = _REPEATED_COMMA.sub(",", text)
    text = _COMMA_BEFORE_WORD.sub(", ", text)
    return _LEADING_PUNCTUATION.sub("", text).strip()


def normalize_text(text: str, language: str = "en") -> str:
    """Rewrite `text` as the words a speech engine should say, on one line.

    Numbers, money, dates, times, phone numbers, units, abbreviations, URLs, e-mail addresses
    and symbols become English words ("$3.50" -> "three dollars and fifty cents"). Only English
    is normalised for now: for any other `language` (BCP-47, "de", "ja-JP"...) the text comes
    back with only whitespace and control characters cleaned up, because English number
    words in, say, a Japanese sentence would be worse than the digits the engine reads itself.

    Never raises: a rule that fails on some odd input leaves that piece of text as written.
    """
    text = clean_whitespace(text)
    if not text or not is_english(language):
        return text
    text = _VULGAR_CHAR.sub(_vulgar, text.translate(_TRANSLATE)) if not text.isascii() else text
    rules = _ADDRESS_RULES + _WORD_RULES
    if _HAS_DIGIT.search(text):
        rules = rules + _NUMBER_RULES
    for pattern, replace in rules + _SYMBOL_RULES:
        text = pattern.sub(replace, text)
    return tidy(text)
