"""The text front-end: plain text or SSML in, billed characters and Segments out.

prepared = prepare(text="Dr. Smith paid $3.50.")   # or prepare(ssml="<speak>...</speak>")
prepared.billed_characters                          # 21
for segment in prepared.segments: ...               # Segment(text="Doctor Smith paid ...")
"""

from synthesis.text.normalize import normalize_text
from synthesis.text.prepare import PreparedText, billed_characters, prepare, validate
from synthesis.text.segment import chunk_text, iter_segments
from synthesis.text.ssml import parse_ssml, render_ssml

__all__ = [
    "PreparedText",
    "billed_characters",
    "chunk_text",
    "iter_segments",
    "normalize_text",
    "parse_ssml",
    "prepare",
    "render_ssml",
    "validate",
]
