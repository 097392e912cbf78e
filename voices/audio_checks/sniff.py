"""Tell the container of an upload from its first bytes. Never from its name or Content-Type."""

from voices.errors import UnsupportedAudio

AUDIO_FORMATS = ("wav", "flac", "mp3", "ogg", "m4a")

_UNSUPPORTED = "This file is not in a supported audio format (WAV, FLAC, MP3, OGG or M4A)."
# Uploads people make by mistake, named so the message can say what the file looks like.
_NOT_AUDIO_SIGNATURES = (
    (b"PK\x03\x04", "This looks like a ZIP archive (or an Office document), not audio."),
    (b"PK\x05\x06", "This looks like an empty ZIP archive, not audio."),
    (b"%PDF-", "This looks like a PDF document, not audio."),
    (b"\x1f\x8b", "This looks like a gzip archive, not audio."),
    (b"7z\xbc\xaf\x27\x1c", "This looks like a 7-Zip archive, not audio."),
    (b"Rar!\x1a\x07", "This looks like a RAR archive, not audio."),
    (b"\x89PNG\r\n\x1a\n", "This looks like a PNG image, not audio."),
    (b"\xff\xd8\xff", "This looks like a JPEG image, not audio."),
    (b"GIF87a", "This looks like a GIF image, not audio."),
    (b"GIF89a", "This looks like a GIF image, not audio."),
)
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<!--")
# ISO BMFF brands of still images; every other 'ftyp' file goes to the audio demuxer.
_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"mif1", b"msf1", b"avif", b"avis"}


def sniff_container(data: bytes) -> str:
    """One of AUDIO_FORMATS, from magic bytes; UnsupportedAudio for anything else."""
    head = data[:64]
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[4:8] == b"ftyp":
        if head[8:12] in _IMAGE_BRANDS:
            raise UnsupportedAudio("This looks like an image (HEIF/AVIF), not audio.")
        return "m4a"
    if head[:3] == b"ID3":
        # An ID3v2 tag can sit in front of FLAC as well as MP3; look past it.
        tag_end = _id3_size(data)
        return "flac" if data[tag_end : tag_end + 4] == b"fLaC" else "mp3"
    if _is_mpeg_audio_frame(head):
        return "mp3"
    raise UnsupportedAudio(_describe_not_audio(data))


def _id3_size(data: bytes) -> int:
    # Header: "ID3", version (2), flags (1), size as four 7-bit "syncsafe" bytes.
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if len(data) > 5 and data[5] & 0x10 else 0
    return 10 + size + footer


def _is_mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG-1/2/2.5 audio frame header (11-bit sync, no reserved field values)."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version = (head[1] >> 3) & 0b11
    layer = (head[1] >> 1) & 0b11  # 0 is reserved; ADTS (raw AAC) uses it
    bitrate_index = head[2] >> 4
    rate_index = (head[2] >> 2) & 0b11
    return version != 0b01 and layer != 0 and bitrate_index != 0b1111 and rate_index != 0b11


def _describe_not_audio(data: bytes) -> str:
    for signature, message in _NOT_AUDIO_SIGNATURES:
        if data.startswith(signature):
            return message
    text = data[:1024].removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if text.startswith(_HTML_STARTS) or (text.startswith(b"<") and b"<html" in text):
        return "This looks like an HTML page, not audio."
    if text.startswith((b"<?xml", b"<svg")):
        return "This looks like an XML or SVG document, not audio."
    if text and _looks_like_text(data[:1024]):
        return "This looks like a text file, not audio."
    return _UNSUPPORTED


def _looks_like_text(sample: bytes) -> bool:
    for cut in range(4):  # the sample may end inside a multi-byte character
        try:
            decoded = sample[: len(sample) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return all(ch.isprintable() or ch in "\r\n\t" for ch in decoded)
    return False
