"""The Batches page's form: pasted lines or an uploaded file, a voice and a format.

It parses input only: reading the items is batches.parsing's job (as for the API), and the
view hands them to batches.services.batch_create.
"""

from pathlib import PurePath

from django import forms

from batches.parsing import _EXTENSIONS
from synthesis.forms import PAGE_FORMATS

ACCEPT = ",".join(sorted(_EXTENSIONS))
KINDS_IN_WORDS = "TXT, CSV, Markdown or Word (.docx)"
# The name pasted lines are parsed under: plain text, a line an item.
PASTED_FILENAME = "pasted-lines.txt"


class BatchCreateForm(forms.Form):
    name = forms.CharField(
        max_length=200, required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "e.g. Course 3, lesson audio"}),
    )
    source = forms.ChoiceField(
        choices=[("lines", "Paste lines"), ("file", "Upload a file")], initial="lines",
        widget=forms.RadioSelect, label="Texts",
    )
    lines = forms.CharField(
        label="Lines to speak", required=False, strip=False,
        help_text="One item per line; empty lines are skipped.",
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "true",
                                     "placeholder": "Welcome to lesson one.\nIn this lesson we look at…"}),
    )
    file = forms.FileField(
        label="File", required=False,
        help_text=f"{KINDS_IN_WORDS}. TXT: a line an item. CSV: a 'text' column (optional 'voice', "
                  "'filename'). Markdown and Word: a paragraph an item.",
        widget=forms.ClearableFileInput(attrs={"accept": ACCEPT}),
        error_messages={"empty": "The file is empty: there is nothing in it to speak."},
    )
    voice = forms.ChoiceField(label="Voice")
    format = forms.ChoiceField(choices=PAGE_FORMATS, initial="mp3", label="Format")

    def __init__(self, *args, voices=(), default_voice: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.voices = [voice for voice in voices if voice.status == "ready"]
        self.fields["voice"].choices = [(voice.id, voice.name) for voice in self.voices]
        self.fields["voice"].initial = default_voice
        self.fields["voice"].error_messages["invalid_choice"] = "Choose one of the voices in the list."

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if upload and PurePath(upload.name or "").suffix.lower() not in _EXTENSIONS:
            raise forms.ValidationError(f"Upload a {KINDS_IN_WORDS} file; “{upload.name}” is none of those.")
        return upload

    def clean(self):
        data = super().clean()
        lines = (data.get("lines") or "").strip()
        upload = data.get("file")
        source = data.get("source") or ("file" if upload else "lines")
        # Without scripts both inputs show and the switch stays on "lines": a file alone is meant.
        if source == "lines" and not lines and (upload or self.has_error("file")):
            source = "file"
        data["source"] = source
        if self.has_error("file"):
            return data
        if source == "file":
            if not upload:
                self.add_error("file", "Choose a file to upload.")
        elif not lines:
            self.add_error("lines", "Paste at least one line of text.")
        return data

    @property
    def source_field(self) -> str:
        """The field the texts came from, where problems with them are shown."""
        return "file" if self.cleaned_data.get("source") == "file" else "lines"
