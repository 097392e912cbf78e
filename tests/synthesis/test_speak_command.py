import io

import pytest
import soundfile as sf
from django.core.management import CommandError, call_command


def test_speak_writes_decodable_audio_in_the_requested_format(tmp_path):
    output = tmp_path / "hello.flac"

    call_command("speak", "Hello from Parla, it costs $3.50.", "--format", "flac", "-o", str(output),
                 stdout=io.StringIO())

    samples, rate = sf.read(output)
    assert rate == 22050
    assert 1.0 < len(samples) / rate < 8.0


def test_speak_lists_voices_with_their_licences():
    out = io.StringIO()

    call_command("speak", "--list-voices", stdout=out)

    assert "piper:en_US-joe-medium\ten-US\tCC0-1.0 (commercial use allowed)" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--ssml", "<speak><audio/></speak>"], "invalid_ssml"),
        (["Hi", "--voice", "piper:nobody"], "unknown_voice"),
        (["Hi", "--speed", "9"], "validation_error"),
    ],
)
def test_speak_reports_bad_input_with_its_code(tmp_path, args, code):
    with pytest.raises(CommandError, match=code):
        call_command("speak", *args, "-o", str(tmp_path / "x.wav"), stdout=io.StringIO())

    assert not (tmp_path / "x.wav").exists()
