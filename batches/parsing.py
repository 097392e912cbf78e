"""Batch input: a JSON list of items, or an uploaded TXT, CSV, Markdown or DOCX file.

Every item keeps the line (or paragraph) it came from, so an error can name it.
"""

import csv
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import PurePath

from tenants.errors import ApplicationError, ErrorCode

UPLOAD_KINDS = ("txt", "csv", "md", "docx")
_EXTENSIONS = {".txt": "txt", ".text": "txt", ".csv": "csv", ".md": "md", ".markdown": "md", ".docx": "docx"}
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class InvalidBatch(ApplicationError):
    """The batch input cannot be read, or one of its items is wrong; `extra` names which."""

    code = ErrorCode.INVALID_BATCH
    status = 400


@dataclass(frozen=True)
class BatchItemInput:
    text: str | None = None
    ssml: str | None = None
    voice: str = ""
    filename: str = ""
    # Where it came from: "line 12", "paragraph 3", "item 7" (1-based), for error messages.
    origin: str = ""


def safe_filename(name: str) -> str:
    """A plain file name for the ZIP: no folders, no traversal, nothing odd."""
    base = PurePath(name.replace("\\", "/")).name
    cleaned = _FILENAME_UNSAFE.sub("_", base).strip("._")
    return cleaned[:120]


def _kind(filename: str, data: bytes) -> str:
    suffix = PurePath(filename or "").suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    if data[:4] == b"PK\x03\x04":
        return "docx"
    # No telling extension: a first line such as "text,voice,filename" is a CSV header.
    first = data[:512].split(b"\n", 1)[0].decode("utf-8-sig", "replace").strip().lower()
    if {"text", "ssml"} & set(re.split(r"\s*[,;\t]\s*", first)) and re.search(r"[,;\t]", first):
        return "csv"
    return "txt"


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidBatch(
            f"The file is not UTF-8 text (line {line}). Save it as UTF-8 and upload again.",
            extra={"line": line},
        ) from None


def _from_txt(data: bytes) -> list[BatchItemInput]:
    return [
        BatchItemInput(text=line.strip(), origin=f"line {number}")
        for number, line in enumerate(_decode(data).splitlines(), start=1)
        if line.strip()
    ]


def _from_csv(data: bytes) -> list[BatchItemInput]:
    text = _decode(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    columns = {(name or "").strip().lower() for name in reader.fieldnames or []}
    if not columns & {"text", "ssml"}:
        raise InvalidBatch(
            "The CSV needs a header row with a 'text' (or 'ssml') column; 'voice' and 'filename' are optional.",
            extra={"line": 1, "columns": sorted(columns)},
        )
    items = []
    try:
        for row in reader:
            values = {(key or "").strip().lower(): (value or "").strip() for key, value in row.items()
                      if isinstance(value, str)}
            line = reader.line_num
            if not values.get("text") and not values.get("ssml"):
                if any(values.values()):
                    raise InvalidBatch(f"Line {line} has no text.", extra={"line": line})
                continue  # A blank line.
            items.append(BatchItemInput(
                text=values.get("text") or None,
                ssml=None if values.get("text") else values.get("ssml"),
                voice=values.get("voice", ""),
                filename=values.get("filename", ""),
                origin=f"line {line}",
            ))
    except csv.Error as exc:
        raise InvalidBatch(f"The CSV cannot be read at line {reader.line_num}: {exc}.",
                           extra={"line": reader.line_num}) from None
    return items


def _from_markdown(data: bytes) -> list[BatchItemInput]:
    from markdown_it import MarkdownIt

    text = _decode(data)
    tokens = MarkdownIt("commonmark").parse(text)
    items = []
    for token in tokens:
        if token.type != "inline" or not token.children:
            continue
        words = []
        for child in token.children:
            if child.type in ("text", "code_inline"):
                words.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                words.append(" ")
        spoken = re.sub(r"\s+", " ", "".join(words)).strip()
        if spoken:
            line = (token.map[0] + 1) if token.map else 0
            items.append(BatchItemInput(text=spoken, origin=f"line {line}"))
    return items


def _from_docx(data: bytes) -> list[BatchItemInput]:
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise InvalidBatch("The file is not a readable Word document (.docx).", extra={"error": str(exc)}) from None
    return [
        BatchItemInput(text=paragraph.text.strip(), origin=f"paragraph {number}")
        for number, paragraph in enumerate(document.paragraphs, start=1)
        if paragraph.text.strip()
    ]


def items_from_upload(data: bytes, *, filename: str) -> list[BatchItemInput]:
    kind = _kind(filename, data)
    if kind == "docx" and data[:4] != b"PK\x03\x04":
        raise InvalidBatch("The file is not a readable Word document (.docx).")
    parse = {"txt": _from_txt, "csv": _from_csv, "md": _from_markdown, "docx": _from_docx}[kind]
    items = parse(data)
    if not items:
        raise InvalidBatch("The file has no text to speak.")
    return items


def items_from_json(raw_items) -> list[BatchItemInput]:
    if not isinstance(raw_items, list) or not raw_items:
        raise InvalidBatch("items must be a non-empty list.", extra={"fields": {"items": ["Expected a list."]}})
    items = []
    for number, raw in enumerate(raw_items, start=1):
        if isinstance(raw, str):
            raw = {"text": raw}
        if not isinstance(raw, dict):
            raise InvalidBatch(f"Item {number} must be an object or a string.", extra={"item": number})
        unknown = sorted(set(raw) - {"text", "ssml", "voice", "filename"})
        if unknown:
            raise InvalidBatch(f"Item {number} has unknown fields: {', '.join(unknown)}.",
                               extra={"item": number, "fields": unknown})
        for key in ("text", "ssml", "voice", "filename"):
            if key in raw and raw[key] is not None and not isinstance(raw[key], str):
                raise InvalidBatch(f"Item {number}: {key} must be a string.", extra={"item": number})
        items.append(BatchItemInput(
            text=raw.get("text"), ssml=raw.get("ssml"), voice=raw.get("voice") or "",
            filename=raw.get("filename") or "", origin=f"item {number}",
        ))
    return items
