import pytest

from synthesis.audio.options import (
    FORMATS,
    AudioOptions,
    content_type,
    file_extension,
    opus_sample_rate,
)
from synthesis.errors import InvalidAudioOptions
from tenants.errors import ErrorCode


def test_audio_options_defaults_are_a_16_bit_mono_wav():
    options = AudioOptions()

    assert (options.format, options.wav_subtype, options.channels) == ("wav", "pcm_16", 1)
    assert options.sample_rate is None
    assert options.loudness_lufs is None
    assert options.true_peak_dbtp == -1.0
    assert options.trim_silence is True
    assert options.effective_bitrate_kbps is None


@pytest.mark.parametrize(
    ("format", "bitrate"), [("mp3", 128), ("m4a", 128), ("ogg", 128), ("opus", 64), ("wav", None)]
)
def test_audio_options_effective_bitrate_defaults_per_codec(format, bitrate):
    assert AudioOptions(format=format).effective_bitrate_kbps == bitrate


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("format", "aiff"),
        ("wav_subtype", "pcm_32"),
        ("sample_rate", 11025),
        ("channels", 3),
        ("bitrate_kbps", 32),
        ("bitrate_kbps", 321),
        ("speed", 0.49),
        ("speed", 2.01),
        ("pitch_semitones", -12.5),
        ("pitch_semitones", 13),
        ("volume_db", -31),
        ("volume_db", 21),
        ("loudness_lufs", -41),
        ("loudness_lufs", -4),
        ("true_peak_dbtp", 0.5),
        ("speed", float("nan")),
    ],
)
def test_audio_options_rejects_out_of_range_values_with_field_errors(field, value):
    fmt = {"bitrate_kbps": "mp3"}.get(field, "wav")
    kwargs = {"format": fmt, field: value} if field != "format" else {field: value}

    with pytest.raises(InvalidAudioOptions) as caught:
        AudioOptions(**kwargs)

    assert list(caught.value.extra["fields"]) == [field]
    assert caught.value.extra["fields"][field][0].startswith("Must")
    assert caught.value.code == ErrorCode.VALIDATION_ERROR
    assert caught.value.status == 400


def test_audio_options_reports_every_bad_field_at_once():
    with pytest.raises(InvalidAudioOptions) as caught:
        AudioOptions.from_request({"format": "mp3", "speed": 9, "volume_db": 99, "channels": 5})

    assert set(caught.value.extra["fields"]) == {"speed", "volume_db", "channels"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("speed", "1.5"),
        ("sample_rate", "24000"),
        ("bitrate_kbps", "128"),
        ("channels", "2"),
        ("pitch_semitones", [1]),
        ("loudness_lufs", {"value": -16}),
        ("trim_silence", "yes"),
        ("trim_silence", 1),
        ("format", 3),
    ],
)
def test_audio_options_from_request_rejects_wrong_types_as_validation_errors(field, value):
    data = {"format": "mp3", field: value} if field != "format" else {field: value}

    with pytest.raises(InvalidAudioOptions) as caught:
        AudioOptions.from_request(data)

    assert field in caught.value.extra["fields"]


@pytest.mark.parametrize("field", ["speed", "sample_rate", "channels", "volume_db"])
def test_audio_options_from_request_rejects_booleans_for_numbers(field):
    with pytest.raises(InvalidAudioOptions) as caught:
        AudioOptions.from_request({field: True})

    assert field in caught.value.extra["fields"]


def test_audio_options_from_request_accepts_json_numbers_and_any_case_format():
    options = AudioOptions.from_request(
        {
            "format": " MP3 ",
            "sample_rate": 44100.0,
            "channels": 2,
            "bitrate_kbps": 192,
            "speed": 1,
            "pitch_semitones": -2.5,
            "volume_db": 3,
            "loudness_lufs": -16,
            "true_peak_dbtp": -1.5,
            "trim_silence": False,
        }
    )

    assert options == AudioOptions(
        format="mp3",
        sample_rate=44100,
        channels=2,
        bitrate_kbps=192,
        speed=1.0,
        pitch_semitones=-2.5,
        volume_db=3.0,
        loudness_lufs=-16.0,
        true_peak_dbtp=-1.5,
        trim_silence=False,
    )
    assert isinstance(options.sample_rate, int)


def test_audio_options_from_request_treats_null_as_default():
    options = AudioOptions.from_request({"format": "opus", "speed": None, "sample_rate": None})

    assert options.speed == 1.0
    assert options.sample_rate is None
    assert options.effective_bitrate_kbps == 64


def test_audio_options_from_request_accepts_missing_body():
    assert AudioOptions.from_request(None) == AudioOptions()


def test_audio_options_from_request_rejects_unknown_keys():
    with pytest.raises(InvalidAudioOptions) as caught:
        AudioOptions.from_request({"sample_rte": 24000})

    assert caught.value.extra["fields"] == {"sample_rte": ["Unknown audio option."]}


def test_audio_options_from_request_can_ignore_unknown_keys():
    options = AudioOptions.from_request({"text": "Hello", "format": "flac"}, allow_unknown=True)

    assert options.format == "flac"


def test_audio_options_from_request_rejects_a_non_object():
    with pytest.raises(InvalidAudioOptions) as caught:
        AudioOptions.from_request(["mp3"])

    assert "non_field_errors" in caught.value.extra["fields"]


@pytest.mark.parametrize("format", ["wav", "flac", "pcm"])
def test_audio_options_rejects_bitrate_for_lossless_formats(format):
    with pytest.raises(InvalidAudioOptions) as caught:
        AudioOptions(format=format, bitrate_kbps=128)

    assert "bitrate_kbps" in caught.value.extra["fields"]


def test_audio_options_rejects_wav_subtype_for_other_formats():
    with pytest.raises(InvalidAudioOptions) as caught:
        AudioOptions(format="flac", wav_subtype="float")

    assert caught.value.extra["fields"] == {"wav_subtype": ["Only applies to the wav format."]}


@pytest.mark.parametrize(
    ("sample_rate", "engine_rate", "expected"),
    [
        (22050, 16000, 24000),
        (44100, 16000, 48000),
        (None, 22050, 24000),
        (16000, 22050, 16000),
        (None, 48000, 48000),
    ],
)
def test_audio_options_output_sample_rate_raises_opus_to_a_rate_opus_supports(
    sample_rate, engine_rate, expected
):
    options = AudioOptions(format="opus", sample_rate=sample_rate)

    assert options.output_sample_rate(engine_rate) == expected


def test_audio_options_output_sample_rate_keeps_engine_rate_when_unset():
    assert AudioOptions(format="mp3").output_sample_rate(22050) == 22050
    assert AudioOptions(format="mp3", sample_rate=48000).output_sample_rate(22050) == 48000


def test_opus_sample_rate_never_goes_down():
    assert [opus_sample_rate(rate) for rate in (8000, 11025, 22050, 44100, 96000)] == [
        8000,
        12000,
        24000,
        48000,
        48000,
    ]


@pytest.mark.parametrize("format", FORMATS)
def test_content_type_and_file_extension_cover_every_format(format):
    assert content_type(format).startswith(("audio/", "application/"))
    assert file_extension(format).isalnum()


def test_content_type_describes_the_raw_pcm_layout():
    assert content_type("pcm", sample_rate=24000, channels=2) == (
        "audio/pcm; rate=24000; channels=2; encoding=s16le"
    )
    assert AudioOptions(format="mp3").content_type == "audio/mpeg"


def test_content_type_rejects_unknown_formats():
    with pytest.raises(ValueError):
        content_type("aiff")
