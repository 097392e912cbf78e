"""Batch input files: TXT, CSV, Markdown, DOCX and JSON items, with errors that name the line."""

import io

import pytest

from batches.parsing import InvalidBatch, items_from_json, items_from_upload, safe_filename


def test_txt_is_one_item_per_non_empty_line():
    items = items_from_upload(b"First line.\n\n  Second line.  \r\nThird.\n", filename="lines.txt")

    assert [(i.text, i.origin) for i in items] == [
        ("First line.", "line 1"), ("Second line.", "line 3"), ("Third.", "line 4")]


def test_csv_reads_text_voice_and_filename_columns():
    data = "text,voice,filename\nHello there.,kokoro:jf_alpha,greeting\n\"Commas, too.\",,second.wav\n"

    items = items_from_upload(data.encode(), filename="lines.csv")

    assert [(i.text, i.voice, i.filename, i.origin) for i in items] == [
        ("Hello there.", "kokoro:jf_alpha", "greeting", "line 2"),
        ("Commas, too.", "", "second.wav", "line 3"),
    ]


def test_csv_with_semicolons_and_a_bom_is_read():
    items = items_from_upload("\ufefftext;filename\nBonjour.;a\n".encode(), filename="lines.csv")

    assert [(i.text, i.filename) for i in items] == [("Bonjour.", "a")]


def test_csv_without_a_text_column_is_refused_at_line_1():
    with pytest.raises(InvalidBatch, match="'text'") as caught:
        items_from_upload(b"words,voice\nHello,x\n", filename="lines.csv")

    assert caught.value.extra["line"] == 1


def test_csv_row_without_text_names_its_line():
    with pytest.raises(InvalidBatch, match="Line 3") as caught:
        items_from_upload(b"text,voice\nHello,\n,kokoro:jf_alpha\n", filename="lines.csv")

    assert caught.value.extra == {"line": 3}


def test_markdown_is_one_item_per_paragraph_with_markup_stripped():
    data = b"# Chapter *one*\n\nIt was a **dark** and [stormy](http://x.test) night.\nThe end.\n\n- a list item\n"

    items = items_from_upload(data, filename="book.md")

    assert [i.text for i in items] == [
        "Chapter one", "It was a dark and stormy night. The end.", "a list item"]


def test_docx_is_one_item_per_paragraph():
    import docx

    document = docx.Document()
    document.add_paragraph("First paragraph.")
    document.add_paragraph("")
    document.add_paragraph("Second paragraph.")
    buffer = io.BytesIO()
    document.save(buffer)

    items = items_from_upload(buffer.getvalue(), filename="script.docx")

    assert [(i.text, i.origin) for i in items] == [
        ("First paragraph.", "paragraph 1"), ("Second paragraph.", "paragraph 3"),
    ]


def test_a_zip_that_is_not_a_word_document_is_refused():
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hello")

    with pytest.raises(InvalidBatch, match="Word document"):
        items_from_upload(buffer.getvalue(), filename="script.docx")


def test_non_utf8_text_is_refused_with_its_line():
    with pytest.raises(InvalidBatch, match="UTF-8") as caught:
        items_from_upload("fine\ncaf\u00e9\n".encode("latin-1"), filename="lines.txt")

    assert caught.value.extra == {"line": 2}


def test_a_file_with_nothing_to_speak_is_refused():
    with pytest.raises(InvalidBatch, match="no text"):
        items_from_upload(b"\n\n   \n", filename="empty.txt")


def test_json_items_accept_strings_and_objects():
    items = items_from_json(["Plain.", {"ssml": "<speak>Hi</speak>", "filename": "x"}])

    assert [(i.text, i.ssml, i.filename, i.origin) for i in items] == [
        ("Plain.", None, "", "item 1"), (None, "<speak>Hi</speak>", "x", "item 2")]


@pytest.mark.parametrize(("raw", "message"), [
    ([], "non-empty list"),
    ("text", "non-empty list"),
    ([42], "Item 1 must be an object"),
    ([{"text": "a", "speed": 2}], "Item 1 has unknown fields: speed"),
    ([{"text": 5}], "Item 1: text must be a string"),
])
def test_json_items_errors_name_the_item(raw, message):
    with pytest.raises(InvalidBatch, match=message):
        items_from_json(raw)


@pytest.mark.parametrize(("name", "safe"), [
    ("../../etc/passwd", "passwd"),
    ("C:\\Windows\\evil.wav", "evil.wav"),
    ("chapter one (final).mp3", "chapter_one_final_.mp3"),
    ("...", ""),
])
def test_safe_filename_keeps_no_folders_or_odd_characters(name, safe):
    assert safe_filename(name) == safe


def test_a_csv_without_its_extension_is_recognised_by_its_header():
    items = items_from_upload(b"text,voice\nHello.,\n", filename="upload")

    assert [(i.text, i.origin) for i in items] == [("Hello.", "line 2")]
