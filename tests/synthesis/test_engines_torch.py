"""The torch engines (XTTS, SpeechT5, MMS, Bark) on tiny random-weight models built here.

Each model is saved in the real on-disk layout and loaded through the engine's own load(), so
these tests run the product's loading and synthesis code; only the weights are fake. Nothing
is downloaded: the Hub is switched off below and every load is local_files_only.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from synthesis.engines.bark import BarkEngine
from synthesis.engines.base import SynthesisRequest
from synthesis.engines.mms import MmsEngine
from synthesis.engines.speecht5 import SpeechT5Engine
from synthesis.engines.xtts import XttsEngine
from synthesis.engines.xtts_torchaudio import torchaudio_stand_in
from synthesis.errors import EngineUnavailable, UnknownVoice
from synthesis.types import AudioChunk, Segment
from tests.synthesis import tiny_models

SEGMENTS = [Segment(text="Hello world.", pause_after_ms=200), Segment(text="This is a test!")]
ENGINE_CLASSES = {
    "xtts": XttsEngine,
    "speecht5": SpeechT5Engine,
    "mms": MmsEngine,
    "bark": BarkEngine,
}
BUILDERS = {
    "xtts": lambda d: tiny_models.build_xtts(d, speakers=("Claribel Dervla", "Ana Florence")),
    "speecht5": tiny_models.build_speecht5,
    "mms": tiny_models.build_mms,
    "bark": tiny_models.build_bark,
}


def _loaded_engine(tmp_path_factory, name: str):
    model_dir = tmp_path_factory.mktemp(f"models-{name}")
    BUILDERS[name](model_dir)
    engine = ENGINE_CLASSES[name](model_dir=model_dir, device="cpu", threads=2)
    engine.load()
    return engine


@pytest.fixture(scope="module")
def xtts(tmp_path_factory):
    return _loaded_engine(tmp_path_factory, "xtts")


@pytest.fixture(scope="module")
def speecht5(tmp_path_factory):
    return _loaded_engine(tmp_path_factory, "speecht5")


@pytest.fixture(scope="module")
def mms(tmp_path_factory):
    return _loaded_engine(tmp_path_factory, "mms")


@pytest.fixture(scope="module")
def bark(tmp_path_factory):
    return _loaded_engine(tmp_path_factory, "bark")


@pytest.fixture(scope="module")
def xtts_conditioning(xtts, tmp_path_factory) -> Path:
    """Conditioning computed once from two reference recordings and saved, as enrollment does."""
    folder = tmp_path_factory.mktemp("references")
    references = [
        tiny_models.write_reference_wav(folder / "one.wav", seconds=3.0, pitch=180.0),
        tiny_models.write_reference_wav(
            folder / "two.wav", seconds=2.5, sample_rate=16_000, pitch=240.0
        ),
    ]
    path = folder / "voice" / "xtts.pt"
    xtts.save_conditioning(xtts.compute_conditioning(references), path)
    return path


def _assert_chunks(chunks: list[AudioChunk], sample_rate: int) -> None:
    assert len(chunks) == len(SEGMENTS)
    for chunk in chunks:
        assert chunk.sample_rate == sample_rate
        assert chunk.samples.dtype == np.float32
        assert chunk.samples.ndim == 1
        assert len(chunk.samples) > 0
        assert np.isfinite(chunk.samples).all()


# One chunk per segment ---------------------------------------------------------------------


def test_xtts_synthesize_yields_one_chunk_per_segment_for_a_cloned_voice(xtts, xtts_conditioning):
    request = SynthesisRequest(voice="cloned", speed=1.25, conditioning_path=xtts_conditioning)

    chunks = list(xtts.synthesize(SEGMENTS, request))

    _assert_chunks(chunks, xtts.info.sample_rate)


def test_xtts_synthesize_speaks_a_builtin_speaker(xtts):
    chunks = list(xtts.synthesize(SEGMENTS, SynthesisRequest(voice="claribel-dervla")))

    _assert_chunks(chunks, xtts.info.sample_rate)


def test_speecht5_synthesize_yields_one_chunk_per_segment(speecht5):
    chunks = list(speecht5.synthesize(SEGMENTS, SynthesisRequest(voice="alice")))

    _assert_chunks(chunks, speecht5.info.sample_rate)


def test_mms_synthesize_yields_one_chunk_per_segment(mms):
    chunks = list(mms.synthesize(SEGMENTS, SynthesisRequest(voice="eng", speed=0.8)))

    _assert_chunks(chunks, mms.info.sample_rate)


def test_mms_synthesize_speaks_faster_at_a_higher_speed(mms):
    # The random-weight model's durations are random but fixed: only the speed differs.
    torch = pytest.importorskip("torch")
    lengths = {}
    for speed in (0.5, 2.0):
        torch.manual_seed(0)
        request = SynthesisRequest(voice="eng", speed=speed)
        chunks = list(mms.synthesize([Segment(text="Hello there, friend.")], request))
        lengths[speed] = len(chunks[0].samples)

    assert lengths[2.0] < lengths[0.5]


def test_mms_synthesize_switches_model_for_a_lang_segment(mms):
    segments = [Segment(text="Hello."), Segment(text="Bonjour à tous.", lang="fr-FR")]

    chunks = list(mms.synthesize(segments, SynthesisRequest(voice="eng")))

    assert len(chunks) == 2
    assert set(mms.model) == {"eng", "fra"}


def test_bark_synthesize_yields_one_chunk_per_segment(bark):
    chunks = list(bark.synthesize(SEGMENTS, SynthesisRequest(voice="en_speaker_0")))

    _assert_chunks(chunks, bark.info.sample_rate)


def test_bark_synthesize_uses_a_preset_shipped_as_npy_files(bark):
    chunks = list(bark.synthesize(SEGMENTS, SynthesisRequest(voice="v2-fr_speaker_2")))

    _assert_chunks(chunks, bark.info.sample_rate)


def test_bark_synthesize_passes_text_cues_through_unchanged(bark, monkeypatch):
    # A spy around the real processor: it records what Bark is asked to say and delegates.
    seen: list[str] = []
    processor = bark.model.processor

    def spy(text, **kwargs):
        seen.append(text)
        return processor(text, **kwargs)

    monkeypatch.setattr(bark.model, "processor", spy)

    list(
        bark.synthesize(
            [Segment(text="Well [laughs] that is funny ♪")], SynthesisRequest(voice="en_speaker_0")
        )
    )

    assert seen == ["Well [laughs] that is funny ♪"]


# XTTS cloning ------------------------------------------------------------------------------


def test_xtts_save_conditioning_writes_tensors_only(xtts_conditioning):
    import torch

    stored = torch.load(xtts_conditioning, weights_only=True)

    assert stored["gpt_cond_latent"].shape == (1, 32, 64)
    assert stored["speaker_embedding"].shape == (1, 512, 1)


def test_xtts_synthesize_reuses_saved_conditioning_without_recomputing(
    xtts, xtts_conditioning, monkeypatch
):
    def fail(*args, **kwargs):
        raise AssertionError("conditioning was recomputed from the reference audio")

    monkeypatch.setattr(xtts, "compute_conditioning", fail)
    for name in ("get_conditioning_latents", "get_gpt_cond_latents", "get_speaker_embedding"):
        monkeypatch.setattr(xtts.model, name, fail)

    chunks = list(
        xtts.synthesize(
            SEGMENTS, SynthesisRequest(voice="cloned", conditioning_path=xtts_conditioning)
        )
    )

    assert len(chunks) == 2


def test_xtts_synthesize_rejects_a_missing_conditioning_file(xtts, tmp_path):
    request = SynthesisRequest(voice="cloned", conditioning_path=tmp_path / "never-enrolled.pt")

    with pytest.raises(UnknownVoice):
        list(xtts.synthesize(SEGMENTS, request))


@pytest.mark.skipif(
    importlib.util.find_spec("torchaudio") is not None, reason="a real torchaudio is installed"
)
def test_xtts_load_leaves_no_torchaudio_stand_in_behind(xtts):
    from transformers.utils import import_utils

    assert xtts.loaded
    assert "torchaudio" not in sys.modules
    assert "torchcodec" not in sys.modules
    assert not import_utils.is_torchaudio_available()


def test_torchaudio_stand_in_mel_spectrogram_matches_librosa():
    import librosa
    import torch

    audio = np.random.default_rng(0).standard_normal(22_050).astype(np.float32) * 0.1
    mel = torchaudio_stand_in().transforms.MelSpectrogram(
        sample_rate=22_050,
        n_fft=2048,
        hop_length=256,
        win_length=1024,
        f_max=8000,
        n_mels=80,
        norm="slaney",
    )

    ours = mel(torch.from_numpy(audio)[None]).numpy()[0]

    expected = librosa.feature.melspectrogram(
        y=audio, sr=22_050, n_fft=2048, hop_length=256, win_length=1024, pad_mode="reflect",
        n_mels=80, fmin=0, fmax=8000, htk=True, norm="slaney",
    )  # fmt: skip
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() <= 1e-4 * np.abs(expected).max()
    assert sorted(mel.state_dict()) == ["mel_scale.fb", "spectrogram.window"]  # torchaudio's keys


def test_torchaudio_stand_in_resample_keeps_leading_dimensions():
    import torch

    resampled = torchaudio_stand_in().functional.resample(torch.zeros(2, 3, 44_100), 44_100, 16_000)

    assert resampled.shape == (2, 3, 16_000)


# Catalog, folders, licences ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ENGINE_CLASSES))
def test_engine_load_names_engine_and_folder_when_the_folder_is_missing(name, tmp_path):
    engine = ENGINE_CLASSES[name](model_dir=tmp_path / "models", device="cpu", threads=1)

    with pytest.raises(EngineUnavailable) as raised:
        engine.load()

    assert name in raised.value.message
    assert str(tmp_path / "models") in raised.value.message
    assert raised.value.extra["engine"] == name
    assert not engine.loaded


@pytest.mark.parametrize(
    ("fixture", "voice_ids"),
    [
        ("xtts", ["xtts:claribel-dervla", "xtts:ana-florence"]),
        ("speecht5", ["speecht5:alice", "speecht5:bob"]),
        ("mms", ["mms:eng", "mms:fra"]),
        ("bark", ["bark:de_speaker_1", "bark:en_speaker_0", "bark:v2-fr_speaker_2"]),
    ],
)
def test_engine_voices_lists_what_the_folder_holds(fixture, voice_ids, request):
    engine = request.getfixturevalue(fixture)

    voices = engine.voices()

    assert sorted(v.id for v in voices) == sorted(voice_ids)
    assert all(v.engine == engine.name and v.licence == engine.info.licence for v in voices)


def test_mms_voices_carry_bcp47_languages(mms):
    assert {v.name: v.language for v in mms.voices()} == {"eng": "en", "fra": "fr"}
    assert mms.info.languages == ("en", "fr")


def test_xtts_voices_are_empty_without_a_speakers_file(tmp_path):
    assert XttsEngine(model_dir=tmp_path).voices() == []


def test_engine_licences_flag_xtts_and_mms_as_non_commercial(tmp_path):
    commercial = {
        name: cls(model_dir=tmp_path).info.licence.commercial_use
        for name, cls in ENGINE_CLASSES.items()
    }

    assert commercial == {"xtts": False, "speecht5": True, "mms": False, "bark": True}
    assert XttsEngine(model_dir=tmp_path).info.licence.name == "Coqui Public Model License (CPML)"
    assert MmsEngine(model_dir=tmp_path).info.licence.name == "CC-BY-NC 4.0"


def test_xtts_voices_refuses_a_speakers_file_that_pickles_code(tmp_path):
    import pickle
    import zipfile

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    folder = tmp_path / "xtts_v2"
    folder.mkdir()
    with zipfile.ZipFile(folder / "speakers_xtts.pth", "w") as archive:
        archive.writestr("speakers_xtts/data.pkl", pickle.dumps({"Evil": Exploit()}))

    assert XttsEngine(model_dir=tmp_path).voices() == []


def test_engine_modules_import_and_list_voices_without_torch(xtts, speecht5):
    # A fresh interpreter in which torch, transformers and coqui cannot be imported.
    script = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "TTS"):
            raise ImportError(name)
sys.meta_path.insert(0, Block())
from pathlib import Path
from synthesis.engines.xtts import XttsEngine
from synthesis.engines.speecht5 import SpeechT5Engine
xtts = XttsEngine(model_dir=Path("{xtts.model_dir}"))
speecht5 = SpeechT5Engine(model_dir=Path("{speecht5.model_dir}"))
print(xtts.info.name, len(xtts.voices()), len(speecht5.voices()))
assert "torch" not in sys.modules
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}

    result = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).parents[2],
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["xtts", "2", "2"]
