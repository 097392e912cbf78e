"""Every number the reference checks use, in one place so they are tuned together."""

CANONICAL_SAMPLE_RATE = 24_000
MIN_SPEECH_SECONDS, MAX_SPEECH_SECONDS = 3.0, 30.0

# A whole file longer than this is refused before (or while) decoding: no 3-30 s reference
# needs two minutes of audio, and the cap bounds the memory and time one upload can cost.
MAX_FILE_SECONDS = 120.0
FFMPEG_TIMEOUT_S = 20.0
# Frames read from libsndfile per step; the source is downmixed block by block, so a
# 16-channel 384 kHz file never sits whole in memory.
DECODE_BLOCK_FRAMES = 32_768

MIN_SOURCE_SAMPLE_RATE = 8_000
MAX_SOURCE_SAMPLE_RATE = 384_000
MAX_SOURCE_CHANNELS = 16

# Smallest plausible size of one second of compressed audio. MP3 cannot go below 8 kbit/s;
# Vorbis/Opus/FLAC/AAC can shrink silence to far less, so their bound is only 1 kbit/s:
# it still catches a header that claims an hour in a few hundred kilobytes.
MIN_BYTES_PER_SECOND = {"mp3": 1000, "ogg": 125, "flac": 125, "m4a": 125}
# A file that holds less than its header claims is corrupt once the missing part is more
# than this; smaller gaps come from sloppy writers and are harmless for a reference.
TRUNCATION_SLACK_SECONDS = 0.25
TRUNCATION_SLACK_RATIO = 0.10

# Loudest sample below this: there is no speech at all, only hum or dither.
NO_SPEECH_PEAK_DBFS = -60.0
# A sample at or above this magnitude counts as clipped (-0.09 dBFS: a limiter set at
# -0.1 dBFS stays under it).
CLIP_LEVEL = 0.99
