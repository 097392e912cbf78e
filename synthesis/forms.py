"""The Speak page's form. Its field names are the API's, so the page script can send the
same values as JSON to /api/v1/speech/stream; without scripts the form posts to the page."""

from django import forms

from synthesis.audio import SAMPLE_RATES, AudioOptions
from synthesis.audio.options import PITCH_RANGE_SEMITONES, SPEED_RANGE
from synthesis.errors import InvalidAudioOptions

# Raw PCM is left out: a browser cannot play headerless audio (the API still offers it).
PAGE_FORMATS = [
    ("mp3", "MP3"),
    ("wav", "WAV"),
    ("ogg", "Ogg Vorbis"),
    ("opus", "Opus"),
    ("flac", "FLAC"),
    ("m4a", "M4A (AAC)"),
]
LOUDNESS_CHOICES = [
    ("", "Leave as recorded"),
    ("-14", "−14 LUFS · streaming platforms"),
    ("-16", "−16 LUFS · podcasts"),
    ("-19", "−19 LUFS · mono podcasts"),
    ("-23", "−23 LUFS · broadcast (EBU R128)"),
]
# AudioOptions field for each form field that shapes the sound.
_AUDIO_FIELDS = {"format": "format", "sample_rate": "sample_rate", "speed": "speed",
                 "pitch": "pitch_semitones", "loudness": "loudness_lufs"}


class SpeakForm(forms.Form):
    input_mode = forms.ChoiceField(
        choices=[("text", "Plain text"), ("ssml", "SSML")], initial="text", widget=forms.RadioSelect,
        label="Input",
    )
    text = forms.CharField(
        label="Text to speak",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 9, "spellcheck": "true",
                                     "placeholder": "Type or paste what Parla should say…"}),
        error_messages={"required": "Type some text to speak."},
    )
    voice = forms.ChoiceField(label="Voice")
    format = forms.ChoiceField(choices=PAGE_FORMATS, initial="mp3")
    sample_rate = forms.TypedChoiceField(
        label="Sample rate",
        choices=[("", "Voice default")] + [(str(rate), f"{rate / 1000:g} kHz") for rate in SAMPLE_RATES],
        coerce=int, empty_value=None, required=False,
    )
    speed = forms.FloatField(min_value=SPEED_RANGE[0], max_value=SPEED_RANGE[1], initial=1.0,
                             widget=forms.NumberInput(attrs={"type": "range", "step": "0.05"}))
    pitch = forms.FloatField(min_value=PITCH_RANGE_SEMITONES[0], max_value=PITCH_RANGE_SEMITONES[1], initial=0,
                             label="Pitch (semitones)",
                             widget=forms.NumberInput(attrs={"type": "range", "step": "0.5"}))
    loudness = forms.TypedChoiceField(choices=LOUDNESS_CHOICES, coerce=float, empty_value=None, required=False)

    def __init__(self, *args, voices=(), default_voice: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["voice"].choices = [(voice.id, voice.name) for voice in voices]
        self.fields["voice"].initial = default_voice

    def clean_text(self) -> str:
        text = self.cleaned_data["text"]
        if not text.strip():
            raise forms.ValidationError("Type some text to speak.")
        return text

    def audio_options(self) -> AudioOptions | None:
        """The validated audio options, or None with the problems added to the form."""
        values = {_AUDIO_FIELDS[name]: self.cleaned_data[name] for name in _AUDIO_FIELDS}
        try:
            return AudioOptions(**values)
        except InvalidAudioOptions as exc:
            reverse = {internal: name for name, internal in _AUDIO_FIELDS.items()}
            for field, problems in exc.extra.get("fields", {}).items():
                self.add_error(reverse.get(field), problems[0])
            return None
