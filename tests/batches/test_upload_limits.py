"""Uploaded batch files are refused at the plan's limits before the costly part runs: a DOCX is
checked as a ZIP before anything is unpacked, and text files are read only up to the first item
past the plan's batch size."""

import io
import os
import struct
import time
import tracemalloc
import zipfile
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from batches import parsing
from batches.models import Batch
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db

MB = 1_000_000


def _zip_with_declared_sizes(members: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A ZIP written by hand so that a member can declare any size, as a hostile upload would.

    Each member is (name, packed bytes, compression method, declared unpacked size, CRC-32).
    Sizes go in ZIP64 extra fields in both the local header and the central directory.
    """
    body, directory = bytearray(), bytearray()
    for name, packed, method, declared, crc in members:
        encoded = name.encode()
        extra = struct.pack("<HHQQ", 0x0001, 16, declared, len(packed))
        offset = len(body)
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", 45, 0, method, 0, 0x21, crc,
                            0xFFFFFFFF, 0xFFFFFFFF, len(encoded), len(extra))
        body += encoded + extra + packed
        directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 45, 45, 0, method, 0, 0x21, crc,
                                 0xFFFFFFFF, 0xFFFFFFFF, len(encoded), len(extra), 0, 0, 0, 0, offset)
        directory += encoded + extra
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), len(body), 0)
    return bytes(body + directory + end)


def _small_docx_parts() -> list[tuple[str, bytes]]:
    import docx

    buffer = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("Hello.")
    document.save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def _docx_upload(data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile("script.docx", data)


def _post_file(client, upload: SimpleUploadedFile):
    return client.post("/api/v1/batches", {"file": upload, "format": "wav"}, format="multipart")


def test_batch_docx_whose_document_declares_10_gb_is_refused_quickly_with_flat_memory(api_client_for, dispatched):
    tenant = TenantFactory(plan__upload_bytes=20 * MB)
    members = [(name, data, zipfile.ZIP_STORED, len(data), zlib.crc32(data))
               for name, data in _small_docx_parts() if name != "word/document.xml"]
    document = os.urandom(10 * MB)  # Incompressible: the upload really is about 10 MB.
    members.append(("word/document.xml", document, zipfile.ZIP_STORED, 10 * 1024**3, zlib.crc32(document)))
    upload = _docx_upload(_zip_with_declared_sizes(members))
    client = api_client_for(tenant)

    tracemalloc.start()
    started = time.monotonic()
    try:
        response = _post_file(client, upload)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (response.status_code, response.json()["code"]) == (400, "invalid_batch")
    assert "unpacks to more than 50 MB" in response.json()["message"]
    assert response.json()["extra"]["limit"] == parsing.DOCX_MAX_UNCOMPRESSED_BYTES
    assert elapsed < 3.0  # Loose: the machines are shared; in practice well under a second.
    assert peak < 100 * MB  # The 10 MB upload and its copies; nothing unpacked.
    assert not Batch.objects.for_tenant(tenant).exists()


def test_batch_docx_with_a_zip_bomb_part_is_refused(api_client_for, dispatched):
    tenant = TenantFactory()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in _small_docx_parts():
            archive.writestr(name, data)
        archive.writestr("word/media/padding.bin", bytes(40 * MB))  # Packs about 1000:1.

    response = _post_file(api_client_for(tenant), _docx_upload(buffer.getvalue()))

    assert (response.status_code, response.json()["code"]) == (400, "invalid_batch")
    assert "word/media/padding.bin" in response.json()["message"]
    assert response.json()["extra"]["ratio"] > parsing.DOCX_MAX_COMPRESSION_RATIO


def test_batch_docx_whose_header_understates_a_part_is_refused_without_unpacking_it(api_client_for, dispatched):
    tenant = TenantFactory()
    members = [(name, data, zipfile.ZIP_STORED, len(data), zlib.crc32(data)) for name, data in _small_docx_parts()]
    hidden = bytes(60 * MB)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = packer.compress(hidden) + packer.flush()
    members.append(("word/media/small.bin", packed, zipfile.ZIP_DEFLATED, 1_000, zlib.crc32(hidden)))

    tracemalloc.start()
    try:
        response = _post_file(api_client_for(tenant), _docx_upload(_zip_with_declared_sizes(members)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (response.status_code, response.json()["code"]) == (400, "invalid_batch")
    assert "damaged" in response.json()["message"]
    assert peak < 100 * MB  # The 60 MB behind the lying header never came out.


@pytest.mark.parametrize("data", [b"PK\x03\x04 not really a zip", b"PK\x03\x04" + bytes(200)])
def test_batch_docx_that_is_not_a_valid_zip_is_refused(api_client_for, dispatched, data):
    tenant = TenantFactory()

    response = _post_file(api_client_for(tenant), _docx_upload(data))

    assert (response.status_code, response.json()["code"]) == (400, "invalid_batch")
    assert "Word document" in response.json()["message"]


def test_batch_docx_within_the_limits_is_read(api_client_for, dispatched):
    tenant = TenantFactory()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in _small_docx_parts():
            archive.writestr(name, data)

    response = _post_file(api_client_for(tenant), _docx_upload(buffer.getvalue()))

    assert response.status_code == 201, response.json()
    assert response.json()["items_total"] == 1


@pytest.fixture
def lines_read(monkeypatch):
    """A spy on the parsers' line reader: it counts the lines handed out and changes nothing."""
    read = []
    real = parsing._raw_lines

    def counting(data):
        for line in real(data):
            read.append(line)
            yield line

    monkeypatch.setattr(parsing, "_raw_lines", counting)
    return read


@pytest.mark.parametrize(("name", "header", "line", "most_lines_read"), [
    ("lines.txt", "", "Line {n}.\n", 101),
    ("lines.csv", "text,filename\n", "Line {n}.,f{n}\n", 102),
    ("book.md", "", "Paragraph {n}.\n\n", parsing._MD_GROUP_LINES),
])
def test_batch_file_over_the_item_limit_is_refused_after_reading_only_its_start(
    api_client_for, dispatched, lines_read, name, header, line, most_lines_read
):
    tenant = TenantFactory(plan__batch_items=100)
    data = (header + "".join(line.format(n=n) for n in range(200_000))).encode()

    response = _post_file(api_client_for(tenant), SimpleUploadedFile(name, data))

    assert (response.status_code, response.json()["code"]) == (400, "invalid_batch")
    assert response.json()["extra"] == {"limit": 100, "items_at_least": 101}
    assert "more than 100 items" in response.json()["message"]
    assert 0 < len(lines_read) <= most_lines_read  # Of 200,000 or more.
    assert not Batch.objects.for_tenant(tenant).exists()


def test_batch_file_at_the_item_limit_is_accepted(api_client_for, dispatched):
    tenant = TenantFactory(plan__batch_items=3)

    response = _post_file(api_client_for(tenant), SimpleUploadedFile("lines.txt", b"One.\nTwo.\n\nThree.\n"))

    assert response.status_code == 201, response.json()
    assert response.json()["items_total"] == 3


def test_batch_json_items_over_the_limit_are_counted_before_they_are_read(api_client_for, dispatched):
    tenant = TenantFactory(plan__batch_items=2)

    response = api_client_for(tenant).post(
        "/api/v1/batches", {"items": [{"text": "a", "speed": "bad"}] * 5, "format": "wav"}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "invalid_batch")
    assert response.json()["extra"] == {"limit": 2, "items": 5}
