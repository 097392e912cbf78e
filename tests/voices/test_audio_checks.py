"""Reference-recording validation and quality report, on real files (no database needed).

Every upload here is a real file: speech-like signals encoded by libsndfile and ffmpeg, and
hostile files built in tests/voices/hostile_files.py. Nothing is mocked; two tests wrap a
library call in a spy that records or forbids it and otherwise lets it run.
"""

import dataclasses
import hashlib
import io
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synthesis.audio.ffmpeg import run_ffmpeg
from synthesis.audio.process import change_tempo_and_pitch
from tests.voices import hostile_files as hostile
from voices.audio_checks import (
    CANONICAL_SAMPLE_RATE,
    ReferenceAudio,
    reference_quality_report,
    reference_validate,
)
from voices.audio_checks import decode as decode_module
from voices.errors import (
    AudioCorrupt,
    AudioTooLarge,
    AudioTooLong,
    AudioTooShort,
    ReferenceRejected,
    UnsupportedAudio,
)

MAX_BYTES = 10_000_000
SR = hostile.SR


def validate(data: bytes, **kwargs) -> ReferenceAudio:
    return reference_validate(data, max_bytes=kwargs.pop("max_bytes", MAX_BYTES), **kwargs)


@pytest.fixture(scope="module")
def speech5() -> np.ndarray:
    """5 s of speech-like sound with 0.5 s of silence on each side (6 s in all)."""
    return hostile.speech_like(5.0)


@pytest.fixture(scope="module")
def containers(speech5) -> dict[str, bytes]:
    return {
        "wav": hostile.wav_bytes(speech5),
        **{name: hostile.encoded(speech5, name) for name in ("mp3", "m4a", "ogg", "flac")},
    }


@pytest.fixture(scope="module")
def piper_speech() -> tuple[np.ndarray, int]:
    """A real voice: Piper's bundled "joe" reading two sentences."""
    from synthesis.engines.base import SynthesisRequest
    from synthesis.engines.piper import PiperEngine
    from synthesis.types import Segment

    engine = PiperEngine(model_dir=Path("/nonexistent"), threads=1)
    sentences = [
        "The old lighthouse keeper climbed the stairs every evening, counting each step.",
        "When the storm arrived, the ships in the harbour rocked against their moorings.",
    ]
    request = SynthesisRequest(voice="en_US-joe-medium")
    chunks = list(engine.synthesize([Segment(s) for s in sentences], request))
    return np.concatenate([chunk.samples for chunk in chunks]), chunks[0].sample_rate


def report_for(samples: np.ndarray, sample_rate: int = SR):
    return reference_quality_report(validate(hostile.wav_bytes(samples, sample_rate)))


# --- size and sniffing ------------------------------------------------------------------


def test_reference_validate_rejects_empty_file():
    with pytest.raises(AudioCorrupt) as caught:
        validate(b"")

    assert caught.value.message == "The file is empty."
    assert caught.value.code == "audio_corrupt"


def test_reference_validate_checks_size_before_content():
    page = hostile.html_page()

    with pytest.raises(AudioTooLarge) as caught:
        validate(page, max_bytes=100)

    assert caught.value.extra["limit"] == 100
    assert caught.value.extra["size"] == len(page)
    assert caught.value.code == "audio_too_large"


def test_reference_validate_accepts_file_of_exactly_max_bytes(containers):
    data = containers["flac"]

    reference = validate(data, max_bytes=len(data))

    assert reference.source_format == "flac"


def test_reference_validate_rejects_html_page_renamed_wav():
    with pytest.raises(UnsupportedAudio) as caught:
        validate(hostile.html_page(), filename="recording.wav")

    assert caught.value.message == "This looks like an HTML page, not audio."
    assert caught.value.code == "unsupported_audio"
    assert caught.value.status == 415


def test_reference_validate_rejects_zip_archive_holding_a_wav():
    with pytest.raises(UnsupportedAudio, match="ZIP archive"):
        validate(hostile.zip_archive(), filename="voice.wav")


def test_reference_validate_rejects_png_image():
    with pytest.raises(UnsupportedAudio, match="PNG image"):
        validate(hostile.png_image(), filename="voice.mp3")


def test_reference_validate_rejects_random_bytes():
    with pytest.raises(UnsupportedAudio, match="not in a supported audio format"):
        validate(hostile.random_bytes())


@pytest.mark.parametrize(
    "magic",
    [
        b"RIFF\x00\x00\x01\x00WAVE",
        b"OggS",
        b"fLaC",
        b"\x00\x00\x00\x18ftypM4A ",
        b"ID3\x03\x00\x00\x00\x00\x00\x00",
        b"\xff\xfb\x90\x64",
    ],
    ids=["wav", "ogg", "flac", "m4a", "id3", "mpeg-sync"],
)
def test_reference_validate_rejects_garbage_behind_audio_magic(magic):
    with pytest.raises(AudioCorrupt):
        validate(hostile.garbage_after_magic(magic))


def test_reference_validate_detects_format_from_bytes_not_name(containers):
    reference = validate(containers["flac"], filename="voice.mp3")

    assert reference.source_format == "flac"


def test_reference_validate_rejects_mp4_without_audio_track():
    with tempfile.NamedTemporaryFile(suffix=".mp4") as out:
        black = ["-f", "lavfi", "-i", "color=c=black:s=16x16:d=1"]
        run_ffmpeg(["-y", *black, "-c:v", "mpeg4", "-f", "mp4", out.name])
        video = out.read()

    with pytest.raises(UnsupportedAudio, match="no audio track"):
        validate(video)


# --- header claims and truncation -------------------------------------------------------


def test_reference_validate_rejects_wav_cut_off_after_half_a_second():
    data = hostile.truncated_wav(claimed_seconds=10.0, held_seconds=0.5)

    with pytest.raises(AudioCorrupt) as caught:
        validate(data)

    assert caught.value.extra == {"claimed_seconds": 10.0, "held_seconds": 0.5}
    assert "truncated" in caught.value.message


def test_reference_validate_accepts_wav_missing_a_few_milliseconds():
    data = hostile.truncated_wav(claimed_seconds=5.0, held_seconds=4.95)

    reference = validate(data)

    assert reference.speech_seconds == pytest.approx(4.9, abs=0.1)


def test_reference_validate_rejects_wav_header_claiming_an_hour():
    data = hostile.wav_claiming(3600.0, held_seconds=1.0)

    with pytest.raises(AudioCorrupt) as caught:
        validate(data)

    assert len(data) < 200_000
    assert caught.value.message.startswith(
        "The header claims 3600.0 s of audio but the file holds only 1.0 s"
    )


def test_reference_validate_rejects_long_file_before_decoding(monkeypatch):
    data = hostile.long_quiet_file_wav(130.0)

    def forbidden(*args, **kwargs):
        raise AssertionError("a file whose header says 130 s must not be decoded")

    # A spy, not a stand-in: it only proves the header check answers first.
    monkeypatch.setattr(decode_module.sf, "SoundFile", forbidden)
    with pytest.raises(AudioTooLong) as caught:
        validate(data)

    assert caught.value.extra["seconds"] == 130.0


def test_reference_validate_rejects_nan_samples_in_float_wav(speech5):
    samples = speech5.copy()
    samples[SR * 2] = np.nan

    with pytest.raises(AudioCorrupt, match="NaN"):
        validate(hostile.wav_bytes(samples, subtype="FLOAT"))


@pytest.mark.parametrize("container", ["wav", "mp3", "m4a", "ogg", "flac"])
@pytest.mark.parametrize("kept", [0.01, 0.4, 0.8])
def test_reference_validate_raises_only_rejections_for_cut_files(containers, container, kept):
    data = containers[container]
    cut = data[: max(1, int(len(data) * kept))]

    try:
        reference = validate(cut)
    except ReferenceRejected:
        return

    assert reference.speech_seconds >= 3.0


# --- speech length ----------------------------------------------------------------------


def test_reference_validate_rejects_one_second_of_silence():
    with pytest.raises(AudioTooShort) as caught:
        validate(hostile.silence_wav(1.0))

    assert caught.value.message.startswith("No speech found")
    assert caught.value.extra["speech_seconds"] == 0.0


def test_reference_validate_rejects_long_silent_file_as_no_speech():
    with pytest.raises(AudioTooShort, match="No speech found"):
        validate(hostile.silence_wav(10.0))


def test_reference_validate_rejects_two_seconds_of_speech():
    data = hostile.wav_bytes(hostile.speech_like(2.0))

    with pytest.raises(AudioTooShort) as caught:
        validate(data)

    assert caught.value.extra["speech_seconds"] == pytest.approx(2.0, abs=0.15)
    assert caught.value.code == "audio_too_short"


def test_reference_validate_rejects_forty_seconds_of_speech():
    data = hostile.wav_bytes(hostile.speech_like(40.0))

    with pytest.raises(AudioTooLong) as caught:
        validate(data)

    assert caught.value.extra["speech_seconds"] == pytest.approx(40.0, abs=0.15)


def test_reference_validate_trims_leading_and_trailing_silence(containers):
    reference = validate(containers["wav"])

    assert reference.speech_seconds == pytest.approx(5.0, abs=0.15)
    # trim_silence keeps a 50 ms margin on each side of the speech
    assert reference.duration_seconds == pytest.approx(reference.speech_seconds + 0.1, abs=0.01)


def test_reference_validate_trims_room_noise_at_the_edges():
    samples = hostile.speech_like(25.0, edge_silence=4.0)
    samples += np.random.default_rng(3).normal(0, 10 ** (-55 / 20), samples.size).astype(np.float32)

    reference = validate(hostile.wav_bytes(samples))

    # 33 s of file, 25 s of speech: the room noise before and after is not counted
    assert reference.speech_seconds == pytest.approx(25.0, abs=0.15)


# --- decoding and the canonical file ----------------------------------------------------


@pytest.mark.parametrize("container", ["wav", "mp3", "m4a", "ogg", "flac"])
def test_reference_validate_decodes_each_container(containers, container):
    reference = validate(containers[container])

    assert reference.source_format == container
    assert reference.sample_rate == CANONICAL_SAMPLE_RATE
    assert reference.samples.ndim == 1 and reference.samples.dtype == np.float32
    assert reference.speech_seconds == pytest.approx(5.0, abs=0.25)


def test_reference_validate_downmixes_stereo_44k_to_mono_24k(speech5):
    import soxr

    left = soxr.resample(speech5, SR, 44_100)
    stereo = np.stack([left, 0.5 * left], axis=1)

    reference = validate(hostile.wav_bytes(stereo, 44_100))

    assert (reference.source_sample_rate, reference.source_channels) == (44_100, 2)
    assert reference.sample_rate == 24_000 and reference.samples.ndim == 1
    assert reference.speech_seconds == pytest.approx(5.0, abs=0.15)


def test_reference_validate_canonical_wav_matches_samples(containers):
    data = containers["mp3"]

    reference = validate(data)
    decoded, rate = sf.read(io.BytesIO(reference.wav_bytes), dtype="float32")
    info = sf.info(io.BytesIO(reference.wav_bytes))

    assert (rate, info.channels, info.subtype) == (24_000, 1, "PCM_16")
    assert np.array_equal(decoded, reference.samples)
    assert reference.duration_seconds == pytest.approx(len(decoded) / 24_000)
    assert reference.checksum == hashlib.sha256(data).hexdigest()
    assert not reference.samples.flags.writeable


def test_reference_validate_keeps_traversal_filename_out_of_the_result(containers):
    reference = validate(containers["wav"], filename="../../etc/passwd.wav")

    for field in dataclasses.fields(reference):
        value = getattr(reference, field.name)
        if isinstance(value, str):
            assert "passwd" not in value and ".." not in value


def test_reference_validate_labels_errors_with_base_name_only():
    with pytest.raises(UnsupportedAudio) as caught:
        validate(hostile.html_page(), filename="../../etc/passwd.wav")

    assert caught.value.extra["filename"] == "passwd.wav"


def test_reference_validate_never_passes_filename_to_ffmpeg(containers, monkeypatch):
    commands = []
    real_run = subprocess.run

    def recording_run(command, *args, **kwargs):
        commands.append(command)
        return real_run(command, *args, **kwargs)

    # A spy: ffmpeg still runs for real; we only look at its arguments.
    monkeypatch.setattr(decode_module.subprocess, "run", recording_run)
    reference = validate(containers["m4a"], filename="../../etc/passwd.m4a")

    assert reference.source_format == "m4a"
    assert len(commands) == 1
    assert not any("passwd" in argument or ".." in argument for argument in commands[0])


# --- quality report ---------------------------------------------------------------------


def test_reference_quality_report_clean_signal_has_no_hints():
    report = report_for(hostile.speech_like(8.0))

    assert report.hints == []
    assert report.snr_db > 35
    assert report.clipping_ratio == 0.0
    assert not report.multiple_speakers_suspected


def test_reference_quality_report_flags_background_noise():
    report = report_for(hostile.with_white_noise(hostile.speech_like(8.0), snr_db=5.0))

    assert report.snr_db < 12
    assert any(hint.startswith("Too much background noise (SNR") for hint in report.hints)


def test_reference_quality_report_flags_clipping():
    report = report_for(np.clip(hostile.speech_like(8.0) * 4.0, -1.0, 1.0))

    assert report.clipping_ratio > 0.01
    assert any(hint.startswith("Clipped peaks (") for hint in report.hints)


def test_reference_quality_report_flags_quiet_recording():
    report = report_for(hostile.speech_like(8.0) * 0.02)

    assert report.loudness_lufs < -40
    assert any(hint.startswith("Very quiet recording (") for hint in report.hints)


def test_reference_quality_report_suspects_two_alternating_speakers():
    report = report_for(hostile.two_speakers(12.0, turn_seconds=2.0))

    assert report.multiple_speakers_suspected
    assert any(hint.startswith("More than one speaker") for hint in report.hints)


def test_reference_quality_report_single_pitch_with_natural_variation_is_one_speaker():
    report = report_for(hostile.speech_like(20.0))

    assert not report.multiple_speakers_suspected


def test_reference_quality_report_real_voice_is_one_clean_speaker(piper_speech):
    samples, rate = piper_speech

    report = report_for(samples, rate)

    assert not report.multiple_speakers_suspected
    assert report.hints == []


def test_reference_quality_report_real_voice_with_a_second_higher_voice_is_suspected(piper_speech):
    samples, rate = piper_speech
    half = samples.size // 2
    # The second sentence an octave up stands in for a second, higher-pitched speaker.
    higher = change_tempo_and_pitch(samples[half:], rate, pitch_semitones=12.0)

    report = report_for(np.concatenate([samples[:half], higher]), rate)

    assert report.multiple_speakers_suspected


def test_reference_quality_report_as_dict_is_json_ready():
    report = report_for(hostile.speech_like(6.0))

    as_dict = json.loads(json.dumps(report.as_dict()))

    assert set(as_dict) == {
        "speech_seconds", "snr_db", "clipping_ratio", "loudness_lufs", "peak_dbfs",
        "multiple_speakers_suspected", "hints",
    }  # fmt: skip
    assert as_dict["speech_seconds"] == round(report.speech_seconds, 2)
    assert as_dict["loudness_lufs"] == round(report.loudness_lufs, 1)
