"""Batch input: a JSON list of items, or an uploaded TXT, CSV, Markdown or DOCX file.

Every item keeps the line (or paragraph) it came from, so an error can name it.
"""

import codecs
import csv
import io
import lzma
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath

from tenants.errors import ApplicationError, ErrorCode

UPLOAD_KINDS = ("txt", "csv", "md", "docx")
_EXTENSIONS = {".txt": "txt", ".text": "txt", ".csv": "csv", ".md": "md", ".markdown": "md", ".docx": "docx"}
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_CSV_SNIFF_CHARS = 4096

# A DOCX is a ZIP. No batch needs more than this unpacked (text, styles and a few images), and
# a part that unpacks to hundreds of times its packed size is a ZIP bomb, not a document: a
# page of one repeated line packs about 250:1, a bomb about 1000:1. Parts under the floor are
# too small to matter whatever their ratio.
DOCX_MAX_UNCOMPRESSED_BYTES = 50_000_000
DOCX_MAX_COMPRESSION_RATIO = 400
DOCX_MAX_MEMBERS = 2_000
_DOCX_RATIO_FLOOR_BYTES = 1_000_000
_DOCX_READ_CHUNK = 1 << 16

# Markdown is parsed in runs of about this many lines (see _from_markdown); one block longer
# than the hard cap is cut there.
_MD_GROUP_LINES = 2_000
_MD_GROUP_LINES_MAX = 20_000


class InvalidBatch(ApplicationError):
    """The batch input cannot be read, or one of its items is wrong; `extra` names which."""

    code = ErrorCode.INVALID_BATCH
    status = 400


class TooManyItems(InvalidBatch):
    """The file holds more items than the caller allows; reading stopped at the first one over."""


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


def _raw_lines(data: bytes) -> Iterator[str]:
    """The file's lines one at a time, decoded as UTF-8 with their line endings.

    Nothing is split or decoded ahead of the reader, so a parser that stops early (at the
    plan's batch size) has paid only for the lines it read.
    """
    for number, raw in enumerate(io.BytesIO(data), start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidBatch(
                f"The file is not UTF-8 text (line {number}). Save it as UTF-8 and upload again.",
                extra={"line": number},
            ) from None


def _from_txt(data: bytes) -> Iterator[BatchItemInput]:
    number = 0
    for raw in _raw_lines(data):
        # str.splitlines' line breaks, as when the whole file was split at once.
        for line in raw.splitlines():
            number += 1
            if line.strip():
                yield BatchItemInput(text=line.strip(), origin=f"line {number}")


def _from_csv(data: bytes) -> Iterator[BatchItemInput]:
    sample = data[: _CSV_SNIFF_CHARS * 4].decode("utf-8-sig", "ignore")[:_CSV_SNIFF_CHARS]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(_raw_lines(data), dialect=dialect)
    try:
        columns = {(name or "").strip().lower() for name in reader.fieldnames or []}
        if not columns & {"text", "ssml"}:
            raise InvalidBatch(
                "The CSV needs a header row with a 'text' (or 'ssml') column; 'voice' and 'filename' are optional.",
                extra={"line": 1, "columns": sorted(columns)},
            )
        for row in reader:
            values = {(key or "").strip().lower(): (value or "").strip() for key, value in row.items()
                      if isinstance(value, str)}
            line = reader.line_num
            if not values.get("text") and not values.get("ssml"):
                if any(values.values()):
                    raise InvalidBatch(f"Line {line} has no text.", extra={"line": line})
                continue  # A blank line.
            yield BatchItemInput(
                text=values.get("text") or None,
                ssml=None if values.get("text") else values.get("ssml"),
                voice=values.get("voice", ""),
                filename=values.get("filename", ""),
                origin=f"line {line}",
            )
    except csv.Error as exc:
        raise InvalidBatch(f"The CSV cannot be read at line {reader.line_num}: {exc}.",
                           extra={"line": reader.line_num}) from None


def _markdown_lines(data: bytes) -> Iterator[str]:
    """Lines as Markdown counts them: \\n, \\r\\n and a lone \\r each end one."""
    for raw in _raw_lines(data):
        body = raw[:-2] if raw.endswith("\r\n") else raw.rstrip("\n")
        yield from body.split("\r")


def _spoken(token) -> str:
    words = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            words.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            words.append(" ")
    return re.sub(r"\s+", " ", "".join(words)).strip()


def _md_block_start(token) -> bool:
    """A top-level block, or a direct child of a top-level list or quote (one of its items)."""
    return token.level <= 1 and token.nesting >= 0 and token.map is not None


def _from_markdown(data: bytes) -> Iterator[BatchItemInput]:
    """A paragraph (or heading, or list item) an item, parsed a run of lines at a time.

    CommonMark decides a document's blocks line by line, and a block that a later block has
    followed never changes again. So the parser reads _MD_GROUP_LINES lines, keeps every
    block but the last (which the next lines may still continue), and carries that last
    block's lines into the next run. Blocks here are top-level ones and the items of a
    top-level list or quote, so a long list is cut between its items. The items come out as
    from one parse of the whole file, but a file of a million paragraphs is never tokenised
    whole, and reading stops with the caller. One block longer than _MD_GROUP_LINES_MAX lines
    (a fence never closed, a list nested in a quote) is cut there.
    NOTE: a reference link resolves to a definition earlier in the file or in its own run,
    not to one further down a long file.
    """
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark")
    env: dict = {}  # Shared by the runs: definitions carry forward.
    lines: list[str] = []
    first = 1  # The file's line number of lines[0].
    wanted = _MD_GROUP_LINES
    source = _markdown_lines(data)
    while True:
        finished = True
        for line in source:
            lines.append(line)
            if len(lines) >= wanted:
                finished = False
                break
        if not lines:
            return
        tokens = parser.parse("\n".join(lines), env)
        starts = [token.map[0] for token in tokens if _md_block_start(token)]
        keep_from = len(lines) if finished or len(lines) >= _MD_GROUP_LINES_MAX else max(starts, default=0)
        for token in tokens:
            if _md_block_start(token) and token.map[0] >= keep_from:
                break
            if token.type == "inline" and (spoken := _spoken(token)):
                yield BatchItemInput(text=spoken, origin=f"line {token.map[0] + first if token.map else 0}")
        if finished:
            return
        lines, first = lines[keep_from:], first + keep_from
        # A long block carried over is parsed again with at least as many new lines, so the
        # parses of one block add up to a few times its length, not its length squared.
        wanted = len(lines) + max(_MD_GROUP_LINES, len(lines))


def _docx_unpacked(data: bytes) -> io.BytesIO:
    """The DOCX's parts, checked and copied into a fresh in-memory ZIP for python-docx.

    SECURITY: a DOCX is a ZIP, and a few kilobytes of ZIP can unpack into gigabytes. Every
    member's declared size and compression ratio are checked before anything is unpacked;
    then each member is unpacked here, counting the bytes that really come out, so a member
    whose header understates its size is stopped at the cap too. python-docx only ever sees
    the copy, whose parts are stored uncompressed and sum to at most DOCX_MAX_UNCOMPRESSED_BYTES.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise InvalidBatch("The file is not a readable Word document (.docx): it is not a valid ZIP archive.",
                           extra={"error": str(exc)}) from None
    with archive:
        members = archive.infolist()
        if len(members) > DOCX_MAX_MEMBERS:
            raise InvalidBatch(f"The Word document has {len(members)} parts; at most {DOCX_MAX_MEMBERS} are read.",
                               extra={"parts": len(members), "limit": DOCX_MAX_MEMBERS})
        declared = 0
        for member in members:
            declared += member.file_size
            if declared > DOCX_MAX_UNCOMPRESSED_BYTES:
                raise _docx_too_large(declared)
            ratio = member.file_size / max(1, member.compress_size)
            if member.file_size > _DOCX_RATIO_FLOOR_BYTES and ratio > DOCX_MAX_COMPRESSION_RATIO:
                raise InvalidBatch(
                    f"The Word document's part {member.filename[:100]!r} unpacks to {ratio:,.0f} times its "
                    "packed size; a real document does not, so the file is refused.",
                    extra={"part": member.filename[:100], "ratio": round(ratio), "limit": DOCX_MAX_COMPRESSION_RATIO},
                )
            if member.flag_bits & 0x1:
                raise InvalidBatch("The Word document is encrypted; save it without a password and upload again.")
        copy = io.BytesIO()
        unpacked = 0
        try:
            with zipfile.ZipFile(copy, "w", zipfile.ZIP_STORED) as target:
                for member in members:
                    if member.is_dir():
                        continue
                    with archive.open(member) as source, target.open(member.filename, "w") as sink:
                        while chunk := source.read(_DOCX_READ_CHUNK):
                            unpacked += len(chunk)
                            if unpacked > DOCX_MAX_UNCOMPRESSED_BYTES:
                                raise _docx_too_large(unpacked)
                            sink.write(chunk)
        except (zipfile.BadZipFile, NotImplementedError, ValueError, OSError, EOFError, zlib.error,
                lzma.LZMAError) as exc:
            # NOTE: a CRC mismatch lands here: zipfile never returns more than the declared
            # size, so a lying header shows as a damaged member.
            raise InvalidBatch("The file is not a readable Word document (.docx): a part of it is damaged.",
                               extra={"error": str(exc)}) from None
    copy.seek(0)
    return copy


def _docx_too_large(size: int) -> InvalidBatch:
    return InvalidBatch(
        f"The Word document unpacks to more than {DOCX_MAX_UNCOMPRESSED_BYTES // 1_000_000} MB; "
        "split it into smaller documents.",
        extra={"limit": DOCX_MAX_UNCOMPRESSED_BYTES, "size": size},
    )


def _from_docx(data: bytes) -> Iterator[BatchItemInput]:
    import docx
    from docx.opc.exceptions import OpcError
    from lxml.etree import LxmlError

    unpacked = _docx_unpacked(data)
    try:
        document = docx.Document(unpacked)
    except (zipfile.BadZipFile, KeyError, ValueError, OpcError, LxmlError) as exc:
        raise InvalidBatch("The file is not a readable Word document (.docx).", extra={"error": str(exc)}) from None
    for number, paragraph in enumerate(document.paragraphs, start=1):
        if text := paragraph.text.strip():
            yield BatchItemInput(text=text, origin=f"paragraph {number}")


def items_from_upload(data: bytes, *, filename: str, max_items: int | None = None) -> list[BatchItemInput]:
    """The items of an uploaded file; TooManyItems as soon as it holds more than max_items.

    The parsers are generators: a file with millions of lines is read only up to the first
    item past the limit.
    """
    kind = _kind(filename, data)
    if kind == "docx" and data[:4] != b"PK\x03\x04":
        raise InvalidBatch("The file is not a readable Word document (.docx).")
    parse = {"txt": _from_txt, "csv": _from_csv, "md": _from_markdown, "docx": _from_docx}[kind]
    items: list[BatchItemInput] = []
    for item in parse(data):
        if max_items is not None and len(items) >= max_items:
            raise TooManyItems(
                f"The file has more than {max_items} items; a batch holds at most {max_items}.",
                extra={"limit": max_items, "items_at_least": max_items + 1},
            )
        items.append(item)
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
