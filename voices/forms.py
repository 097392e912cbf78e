"""The Voices pages' forms. They parse input only; the views hand it to voices.services."""

import re

from django import forms

from voices.audio_checks.sniff import AUDIO_FORMATS
from voices.models import VoiceProfile

# BCP-47 as people write it: "en", "en-US", "pt-BR", "zh-Hant-TW".
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
LANGUAGE_SUGGESTIONS = ["en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "it-IT", "pt-BR", "nl-NL", "ja-JP"]
# What the file picker offers; the content decides, not the name (voices.audio_checks).
ACCEPT = ",".join([f".{ext}" for ext in AUDIO_FORMATS] + [".mp4", ".oga", ".opus", "audio/*"])


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class ReferencesField(forms.FileField):
    """One or more recordings from one <input type="file" multiple>."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ACCEPT}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            files = []
            for item in data:
                if item and not item.size:
                    raise forms.ValidationError(f"{item.name}: the file is empty.", code="empty")
                if item:
                    files.append(single(item, initial))
            if not files and self.required:
                raise forms.ValidationError(self.error_messages["required"], code="required")
            return files
        cleaned = single(data, initial)
        return [cleaned] if cleaned else []


def _clean_language(value: str) -> str:
    value = value.strip()
    if not _LANGUAGE.match(value):
        raise forms.ValidationError("Write the language as a code such as en-US, de or pt-BR.")
    return value


class _VoiceFieldsMixin:
    """Name and language rules shared by the create and edit forms."""

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the voice a name.")
        return name

    def clean_language(self) -> str:
        return _clean_language(self.cleaned_data["language"])


class VoiceCreateForm(_VoiceFieldsMixin, forms.Form):
    name = forms.CharField(
        max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "e.g. Course narrator"}),
        error_messages={"required": "Give the voice a name."},
    )
    language = forms.CharField(
        max_length=16, initial="en-US", help_text="The language the recordings are in, e.g. en-US.",
        widget=forms.TextInput(attrs={"list": "language-suggestions", "autocomplete": "off", "spellcheck": "false"}),
    )
    description = forms.CharField(
        max_length=2000, required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "What the voice is for, who recorded it…"}),
    )
    references = ReferencesField(
        label="Reference recordings",
        error_messages={"required": "Add at least one recording of the voice."},
    )


class VoiceUpdateForm(_VoiceFieldsMixin, forms.Form):
    name = forms.CharField(max_length=100, error_messages={"required": "Give the voice a name."})
    description = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 3}))
    language = forms.CharField(
        max_length=16, widget=forms.TextInput(attrs={"list": "language-suggestions", "spellcheck": "false"}),
    )
    gender = forms.CharField(max_length=16, required=False,
                             widget=forms.TextInput(attrs={"placeholder": "e.g. female"}))
    age = forms.CharField(max_length=16, required=False, widget=forms.TextInput(attrs={"placeholder": "e.g. adult"}))

    @classmethod
    def for_profile(cls, profile: VoiceProfile, data=None) -> "VoiceUpdateForm":
        initial = {field: getattr(profile, field) for field in ("name", "description", "language", "gender", "age")}
        return cls(data, initial=initial, prefix="edit")

    def changes(self) -> dict:
        """Only what differs from the profile, so the audit log names real changes."""
        return {name: value for name, value in self.cleaned_data.items() if value != self.initial.get(name)}


class ReferencesAddForm(forms.Form):
    references = ReferencesField(
        label="Add recordings",
        error_messages={"required": "Choose at least one recording to add."},
    )


class ReferenceCheckForm(forms.Form):
    """One file, checked before the voice form is sent (nothing is stored)."""

    file = forms.FileField(error_messages={"required": "Choose a recording to check.", "empty": "The file is empty."})
