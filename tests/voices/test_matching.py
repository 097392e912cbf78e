"""The pack search behind matched voices (voices.matching), with the real Kokoro, Resemblyzer and Whisper.

Kokoro speaks about one second of audio per second here, so these tests search with a handful
of evaluations and a short sentence; the production configuration runs in test_enrollment.py.
"""

import io
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import butter, sosfilt

from synthesis.engines.base import SynthesisRequest
from synthesis.engines.registry import loaded_engine
from synthesis.types import Segment
from tests.tenants.factories import TenantFactory
from tests.voices.factories import VoiceProfileFactory
from voices import enrollment
from voices.matching import (
    CONFIDENCE_TOLERANCE,
    IntelligibilityGate,
    PackSpace,
    embed,
    match_embedding,
    match_voice,
    reference_embedding,
    whisper_text_log_prob,
)
from voices.models import VoiceProfile

SHORT = ("Where were you yesterday?",)


@pytest.fixture(scope="module")
def kokoro():
    return loaded_engine("kokoro")


@pytest.fixture(scope="module")
def target(speech_wav) -> np.ndarray:
    samples, rate = sf.read(io.BytesIO(speech_wav), dtype="float32")
    return reference_embedding([(samples, rate)])


def _speak(engine, pack: np.ndarray, sentences, folder) -> tuple[list[np.ndarray], int]:
    path = folder / "pack.npy"
    np.save(path, pack)
    request = SynthesisRequest(voice="x", conditioning_path=path)
    chunks = list(engine.synthesize([Segment(s) for s in sentences], request))
    return [c.samples for c in chunks], chunks[0].sample_rate


def test_pack_space_spans_the_catalog_and_moves_timbre_by_the_packs_spread(kokoro):
    packs = {voice.name: kokoro.pack(voice.name) for voice in kokoro.voices()}
    space = PackSpace(packs, directions=4, seed=3)
    one_hot = np.array([6.0 if name == "jm_kumo" else -6.0 for name in space.names] + [0.0] * 4)
    spread = space.packs.std(axis=0).mean(axis=0)

    pack = space.pack(one_hot)
    moved = space.pack(one_hot + np.array([0.0] * 5 + [1.0, 0.0, 0.0, 0.0]))

    assert pack.shape == (510, 1, 256) and pack.dtype == np.float32
    assert np.allclose(pack, packs["jm_kumo"], atol=1e-3)
    step = (moved - pack).reshape(510, 256)
    assert np.allclose(step, step[0], atol=1e-5)  # The same timbre offset for every sentence length.
    assert 0.5 < np.abs(step[0, :128] / spread[:128]).mean() < 1.2  # About one pack-to-pack spread per unit.
    assert not step[0, 128:].any()  # The prosody half only moves by mixing packs.
    assert not np.allclose(PackSpace(packs, directions=4, seed=4).directions, space.directions)


def test_intelligibility_gate_rejects_a_pack_whose_speech_collapses(kokoro, tmp_path):
    sentences = ("The early train leaves at nine.",)
    gate = IntelligibilityGate(sentences)  # The real Whisper model.
    rng = np.random.default_rng(0)
    catalog = kokoro.pack("jf_alpha")
    garbage = (catalog + rng.standard_normal(catalog.shape) * 4 * catalog.std()).astype(np.float32)

    baseline = gate.set_baseline(*_speak(kokoro, catalog, sentences, tmp_path))
    passes_catalog, _ = gate.check(*_speak(kokoro, catalog, sentences, tmp_path))
    passes_garbage, garbage_wer = gate.check(*_speak(kokoro, garbage, sentences, tmp_path))

    assert passes_catalog is True
    assert passes_garbage is False and garbage_wer > baseline + 0.02


def test_whisper_is_surer_of_the_words_a_clear_voice_says_than_of_other_words_or_of_a_muddy_voice(kokoro, tmp_path):
    sentence = "The early train leaves at nine."
    catalog = kokoro.pack("jm_kumo")
    rng = np.random.default_rng(1)
    muddy = (catalog + rng.standard_normal(catalog.shape) * 1.5 * catalog.std()).astype(np.float32)
    (clear,), rate = _speak(kokoro, catalog, (sentence,), tmp_path)
    (slurred,), _ = _speak(kokoro, muddy, (sentence,), tmp_path)

    right = whisper_text_log_prob(clear, rate, sentence)
    wrong = whisper_text_log_prob(clear, rate, "Please call me back after lunch.")
    unsure = whisper_text_log_prob(slurred, rate, sentence)

    assert -1.0 < right <= 0.0
    assert wrong < right - 2.0
    assert unsure < right - CONFIDENCE_TOLERANCE


def test_intelligibility_gate_refuses_a_candidate_whisper_is_much_less_sure_of_even_with_every_word_right():
    # Stub "speech": [clarity, sentence index]. The stub transcriber hears every word right; the
    # stub scorer's confidence follows the clarity.
    sentences = ("one two", "three four")

    def speech(clarity: float) -> list[np.ndarray]:
        return [np.array([clarity, index], dtype=np.float32) for index in range(len(sentences))]

    gate = IntelligibilityGate(sentences, transcribe=lambda samples, rate: sentences[int(samples[1])],
                               confidence=lambda samples, rate, text: -0.30 - float(samples[0]))
    gate.set_baseline(speech(0.0), 16_000)

    assert (gate.baseline, gate.baseline_confidence) == (0.0, pytest.approx(-0.30))
    assert gate.check(speech(CONFIDENCE_TOLERANCE / 2), 16_000) == (True, 0.0)
    assert gate.check(speech(2 * CONFIDENCE_TOLERANCE), 16_000) == (False, 0.0)
    # A stub transcriber on its own judges by word error rate alone.
    assert IntelligibilityGate(sentences, transcribe=lambda samples, rate: "x").confidence is None


def test_match_embedding_keeps_the_catalog_pack_when_every_better_candidate_fails_the_gate(kokoro, tmp_path):
    # Aimed at an even mix of a male and a female pack, the search's first candidate (a mix
    # of the catalog) is already closer than any single pack: there is something to reject.
    mix = (kokoro.pack("jm_kumo") + kokoro.pack("jf_gongitsune")) / 2
    pieces, rate = _speak(kokoro, mix, SHORT, tmp_path)
    heard = []

    catalog = len(kokoro.voices())

    def transcribe(samples: np.ndarray, sample_rate: int) -> str:
        # Stub of Whisper (the real one is exercised above and in test_enrollment.py): it hears
        # the catalog packs fine and every later candidate as noise.
        heard.append(samples)
        return SHORT[0] if len(heard) <= catalog else "mm"

    result = match_embedding(embed(np.concatenate(pieces), rate), engine=kokoro, budget=9, sentences=SHORT,
                             transcribe=transcribe)

    assert result.rejected >= 1 and result.gate_checks == result.rejected + catalog
    assert result.catalog_wer == {voice.name: 0.0 for voice in kokoro.voices()}
    assert result.similarity == result.baseline_similarity == result.catalog[result.base_pack]
    assert np.array_equal(result.pack, kokoro.pack(result.base_pack))
    assert (result.baseline_wer, result.wer) == (0.0, 0.0)


def test_a_catalog_pack_whisper_understands_poorly_is_not_the_base_even_when_it_is_the_most_similar(
        kokoro, tmp_path):
    sentence = "The early train leaves at nine, she said."
    pieces, rate = _speak(kokoro, kokoro.pack("jf_alpha"), (sentence,), tmp_path)
    target = embed(np.concatenate(pieces), rate)  # jf_alpha itself: it is the most similar pack
    misheard = {}

    def transcribe(samples: np.ndarray, sample_rate: int) -> str:
        # Stub of Whisper: jf_alpha's speech (the same samples the real engine makes for it) is
        # misheard by three words of eight, every other pack heard right.
        if np.array_equal(samples, pieces[0]):
            misheard["jf_alpha"] = True
            return "The early rain leaves and nine he said."
        return "The early train leaves at nine she said"

    result = match_embedding(target, engine=kokoro, budget=5, sentences=(sentence,), transcribe=transcribe,
                             validation=())

    assert misheard and max(result.catalog, key=result.catalog.get) == "jf_alpha"
    assert result.catalog_wer["jf_alpha"] > min(result.catalog_wer.values()) + 0.10
    assert result.base_pack != "jf_alpha"
    assert result.base_pack == max((name for name in result.catalog if name != "jf_alpha"), key=result.catalog.get)
    assert result.baseline_similarity == result.catalog[result.base_pack]
    assert np.array_equal(result.pack, kokoro.pack(result.base_pack))
    assert result.weights[result.base_pack] == 1.0


def test_match_embedding_is_deterministic_for_a_seed(kokoro, target):
    def run(seed: int):
        return match_embedding(target, engine=kokoro, budget=7, seed=seed, sentences=SHORT, gate=False)

    first, second = run(seed=5), run(seed=5)

    assert np.array_equal(first.pack, second.pack)
    assert (first.similarity, first.history, first.evaluations) == (second.similarity, second.history, 7)
    assert first.similarity >= first.baseline_similarity
    assert first.wer is None and first.gate_checks == 0


def test_finalists_are_judged_on_other_sentences_and_may_keep_an_equaliser_fitted_to_the_references(kokoro, tmp_path):
    # The "speaker" is jm_kumo recorded through a dark microphone (a 1 kHz low-pass): no pack
    # sounds like that, an equaliser does.
    pieces, rate = _speak(kokoro, kokoro.pack("jm_kumo"), ("Please call me back after lunch today.",), tmp_path)
    dark = sosfilt(butter(2, 1000, fs=rate, output="sos"), np.concatenate(pieces)).astype(np.float32)
    progress = []

    # 12 syntheses, two offspring a generation: 5 catalog packs, 4 searched, 3 kept for finalists.
    result = match_voice([(dark, rate)], engine=kokoro, budget=12, offspring=2, gate=False, sentences=SHORT,
                         validation=("The early train leaves at nine.",),
                         progress=lambda done, total: progress.append((done, total)))

    assert result.base_pack == "jm_kumo"
    assert result.validation_similarity is not None and 9 < result.evaluations <= 12
    assert progress[-1] == (result.evaluations, 12)
    assert result.equalizer is not None and result.equalizer_limit in (6.0, 12.0)
    treble = result.equalizer.frequencies > 3000
    assert result.equalizer.gains_db[treble].mean() < -3
    # Stored as the engine reads it: the pack and the equaliser in one .npz.
    path = tmp_path / "voice.npz"
    path.write_bytes(result.conditioning())
    plain, _ = _speak(kokoro, result.pack, ("The early train leaves at nine.",), tmp_path)
    chunks = list(kokoro.synthesize([Segment("The early train leaves at nine.")],
                                    SynthesisRequest(voice="matched", conditioning_path=path)))
    heard = embed(chunks[0].samples, rate)
    assert np.dot(heard, embed(dark, rate)) > np.dot(embed(plain[0], rate), embed(dark, rate))


@pytest.mark.django_db
def test_enrollment_progress_is_written_only_to_the_enrolling_profile_of_its_tenant(monkeypatch):
    monkeypatch.setattr(enrollment, "PROGRESS_SECONDS", 3600)
    profile = VoiceProfileFactory(kind=VoiceProfile.Kind.MATCHED, engine="kokoro", status="enrolling")
    other = VoiceProfileFactory(kind=VoiceProfile.Kind.MATCHED, engine="kokoro", status="enrolling",
                                tenant=TenantFactory())
    # The enrollment being run: its tenant, voice and generation are what the reporter needs.
    running = SimpleNamespace(tenant_id=profile.tenant_id, profile_id=profile.pk,
                              generation=profile.enrollment_generation)
    report = enrollment._ProgressReporter(running)

    report("searching", 0.25)
    report("searching", 0.5)  # Within PROGRESS_SECONDS of the last write: dropped.
    stored = VoiceProfile.objects.for_tenant(profile.tenant).get(pk=profile.pk).enrollment
    mine = VoiceProfile.objects.for_tenant(profile.tenant).filter(pk=profile.pk)
    mine.update(status="ready", enrollment={})
    with pytest.raises(enrollment.EnrollmentSuperseded):  # no longer enrolling: the search stops
        report("storing", 0.95, force=True)

    assert stored == {"stage": "searching", "progress": 0.25}
    assert VoiceProfile.objects.for_tenant(profile.tenant).get(pk=profile.pk).enrollment == {}
    assert VoiceProfile.objects.for_tenant(other.tenant).get(pk=other.pk).enrollment == {}


def test_a_searched_finalist_must_beat_the_base_pack_by_the_margin(kokoro, tmp_path, monkeypatch):
    # The "speaker" is an even mix of two packs: the search finds packs closer than any stock
    # pack. With a margin no search can clear, the base pack (and its equaliser) is kept anyway.
    mix = (kokoro.pack("jm_kumo") + kokoro.pack("jf_gongitsune")) / 2
    pieces, rate = _speak(kokoro, mix, ("Please call me back after lunch today.",), tmp_path)
    options = {"engine": kokoro, "budget": 12, "offspring": 2, "gate": False, "sentences": SHORT,
                   "validation": ("The early train leaves at nine.",)}

    free = match_voice([(pieces[0], rate)], **options)
    monkeypatch.setattr("voices.matching.search.FINALIST_MARGIN", 1.0)
    held = match_voice([(pieces[0], rate)], **options)

    assert len(free.history) > 1 and free.weights[free.base_pack] < 1.0  # a searched pack won
    assert held.weights[held.base_pack] == 1.0 and np.array_equal(held.pack, kokoro.pack(held.base_pack))
    assert held.validation_similarity < free.validation_similarity
