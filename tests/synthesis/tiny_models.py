"""Tiny random-weight models saved in the real on-disk layout of each torch engine.

The engines load them through their own code (from_pretrained on a local folder, coqui's
load_checkpoint), so the tests exercise the product's loading and synthesis paths in seconds.
The audio is noise; only its shape matters. Each builder takes the engines' model dir and
returns the engine's folder inside it.
"""

import json
from pathlib import Path

import numpy as np

HIDDEN = 32
_TEXT = [
    "hello world this is a tiny test of the voice",
    "the quick brown fox jumps over the lazy dog",
    "abcdefghijklmnopqrstuvwxyz 0123456789 . , ! ? ' -",
]


def _seed() -> None:
    import torch

    torch.manual_seed(0)


# XTTS ----------------------------------------------------------------------------------------


def _write_xtts_vocab(path: Path) -> None:
    """A tokenizers BPE vocab with XTTS's special tokens ([START], [STOP], [SPACE], [en], ...)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from synthesis.engines.xtts import LANGUAGES

    special = ["[STOP]", "[UNK]", "[SPACE]", "[START]"] + [f"[{lang}]" for lang in LANGUAGES]
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(
        _TEXT, trainers.BpeTrainer(vocab_size=120, special_tokens=special)
    )
    tokenizer.save(str(path))


def build_xtts(model_dir: Path, speakers: tuple[str, ...] = ()) -> Path:
    """model.pth + config.json + vocab.json (+ speakers_xtts.pth when `speakers` are given)."""
    import torch

    from synthesis.engines.xtts import import_coqui_xtts

    # Through the engine: it imports coqui where torchaudio is missing.
    xtts_config_class, xtts_class = import_coqui_xtts()
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer

    _seed()
    folder = Path(model_dir) / "xtts_v2"
    folder.mkdir(parents=True, exist_ok=True)
    _write_xtts_vocab(folder / "vocab.json")
    config = xtts_config_class()
    args = config.model_args
    args.gpt_layers = 2
    args.gpt_n_model_channels = 64
    args.gpt_n_heads = 4
    args.decoder_input_dim = 64  # the HiFi-GAN decoder reads the GPT's latents
    args.gpt_use_perceiver_resampler = True  # as in XTTS-v2
    # Random weights never emit the stop token: this bounds generation to 4 codes (~0.2 s), and
    # so the HiFi-GAN decoder's work (its 512 channels are fixed by coqui).
    args.gpt_max_audio_tokens = 7
    config.gpt_cond_len = 3
    config.gpt_cond_chunk_len = 1
    config.max_ref_len = 3
    model = xtts_class(config)
    # The GPT is built only once a tokenizer is attached.
    model.tokenizer = VoiceBpeTokenizer(vocab_file=str(folder / "vocab.json"))
    model.init_models()
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    config.save_json(str(folder / "config.json"))
    if speakers:
        latents = {
            name: {
                "gpt_cond_latent": torch.randn(1, 32, args.gpt_n_model_channels),
                "speaker_embedding": torch.randn(1, args.d_vector_dim, 1),
            }
            for name in speakers
        }
        torch.save(latents, folder / "speakers_xtts.pth")
    return folder


# SpeechT5 ------------------------------------------------------------------------------------


def build_speecht5(model_dir: Path, speakers: tuple[str, ...] = ("alice", "bob")) -> Path:
    """speecht5/{model, vocoder, speakers/<name>.npy}."""
    import io

    import sentencepiece
    from transformers import (
        SpeechT5Config,
        SpeechT5FeatureExtractor,
        SpeechT5ForTextToSpeech,
        SpeechT5HifiGan,
        SpeechT5HifiGanConfig,
        SpeechT5Processor,
        SpeechT5Tokenizer,
    )

    _seed()
    folder = Path(model_dir) / "speecht5"
    (folder / "model").mkdir(parents=True, exist_ok=True)
    # A character SentencePiece model with SpeechT5's special ids, like its spm_char.model.
    spm = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(_TEXT),
        model_writer=spm,
        model_type="char",
        vocab_size=44,
        hard_vocab_limit=False,
        bos_id=0,
        pad_id=1,
        eos_id=2,
        unk_id=3,
        minloglevel=2,
    )
    (folder / "spm_char.model").write_bytes(spm.getvalue())
    tokenizer = SpeechT5Tokenizer(vocab_file=str(folder / "spm_char.model"))
    SpeechT5Processor(
        feature_extractor=SpeechT5FeatureExtractor(), tokenizer=tokenizer
    ).save_pretrained(folder / "model")
    (folder / "spm_char.model").unlink()

    config = SpeechT5Config(
        vocab_size=len(tokenizer) + 2,
        hidden_size=HIDDEN,
        encoder_layers=1,
        encoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_layers=1,
        decoder_attention_heads=2,
        decoder_ffn_dim=64,
        speech_decoder_prenet_units=HIDDEN,
        speech_decoder_postnet_units=HIDDEN,
        speech_decoder_postnet_layers=2,
        speaker_embedding_dim=512,
    )
    model = SpeechT5ForTextToSpeech(config)
    # The random stop head: bias it to "stop" so generation ends after the first step
    # (generate_speech's default threshold is 0.5) instead of running to maxlenratio.
    prob_out = model.speech_decoder_postnet.prob_out
    prob_out.weight.data.zero_()
    prob_out.bias.data.fill_(10.0)
    model.save_pretrained(folder / "model")

    vocoder = SpeechT5HifiGan(
        SpeechT5HifiGanConfig(
            model_in_dim=config.num_mel_bins,
            upsample_initial_channel=HIDDEN,
            upsample_rates=[4, 4, 4, 4],
            upsample_kernel_sizes=[8, 8, 8, 8],
            resblock_kernel_sizes=[3],
            resblock_dilation_sizes=[[1, 3]],
        )
    )
    vocoder.save_pretrained(folder / "vocoder")

    (folder / "speakers").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for name in speakers:
        xvector = rng.standard_normal(512).astype(np.float32)
        np.save(folder / "speakers" / f"{name}.npy", xvector / np.linalg.norm(xvector))
    return folder


# MMS-TTS -------------------------------------------------------------------------------------


def build_mms(model_dir: Path, languages: tuple[str, ...] = ("eng", "fra")) -> Path:
    """mms-tts/<lang>/ with a VitsModel and its VitsTokenizer per language."""
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    _seed()
    folder = Path(model_dir) / "mms-tts"
    for language in languages:
        target = folder / language
        target.mkdir(parents=True, exist_ok=True)
        characters = [
            "<pad>",
            "<unk>",
            " ",
            "'",
            "-",
            *"abcdefghijklmnopqrstuvwxyzàâçéèêëîïôûùüÿœæ",
        ]
        (target / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(characters)}))
        # MMS tokenizers read characters (no phonemizer), lower-cased.
        VitsTokenizer(
            vocab_file=str(target / "vocab.json"), language=language, phonemize=False
        ).save_pretrained(target)
        config = VitsConfig(
            vocab_size=len(characters),
            hidden_size=HIDDEN,
            num_hidden_layers=1,
            num_attention_heads=2,
            ffn_dim=64,
            flow_size=HIDDEN,
            spectrogram_bins=65,
            upsample_initial_channel=HIDDEN,
            upsample_rates=[8, 8, 2, 2],
            upsample_kernel_sizes=[16, 16, 4, 4],
            resblock_kernel_sizes=[3],
            resblock_dilation_sizes=[[1, 3]],
            duration_predictor_filter_channels=HIDDEN,
            depth_separable_channels=2,
            prior_encoder_num_wavenet_layers=1,
            posterior_encoder_num_wavenet_layers=1,
            sampling_rate=16_000,
        )
        VitsModel(config).save_pretrained(target)
    return folder


# Bark ----------------------------------------------------------------------------------------


def build_bark(model_dir: Path, voices: tuple[str, ...] = ("en_speaker_0", "de_speaker_1")) -> Path:
    """bark/ with BarkModel + BarkProcessor, voices/<name>.npz presets, and one preset the way
    a Hugging Face copy ships them (speaker_embeddings_path.json + .npy files), v2/fr_speaker_2."""
    from transformers import (
        BarkConfig,
        BarkModel,
        BarkProcessor,
        BertTokenizer,
        EncodecConfig,
        GenerationConfig,
    )
    from transformers.models.bark.configuration_bark import (
        BarkCoarseConfig,
        BarkFineConfig,
        BarkSemanticConfig,
    )
    from transformers.models.bark.generation_configuration_bark import (
        BarkCoarseGenerationConfig,
        BarkFineGenerationConfig,
        BarkGenerationConfig,
        BarkSemanticGenerationConfig,
    )

    _seed()
    folder = Path(model_dir) / "bark"
    folder.mkdir(parents=True, exist_ok=True)
    words = sorted(
        {word for line in _TEXT for word in line.split()} | set("abcdefghijklmnopqrstuvwxyz")
    )
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[", "]", *words]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(vocab_file=str(folder / "vocab.txt"), do_lower_case=False)
    BarkProcessor(tokenizer=tokenizer).save_pretrained(folder)

    layers = {"hidden_size": HIDDEN, "num_layers": 1, "num_heads": 2, "block_size": 1024}
    # Vocabulary sizes are Bark's own: token offsets in its generation config depend on them.
    config = BarkConfig(
        semantic_config=BarkSemanticConfig(
            input_vocab_size=129_600, output_vocab_size=10_048, **layers
        ).to_dict(),
        coarse_acoustics_config=BarkCoarseConfig(
            input_vocab_size=12_096, output_vocab_size=12_096, **layers
        ).to_dict(),
        fine_acoustics_config=BarkFineConfig(
            input_vocab_size=1_056, output_vocab_size=1_056, **layers
        ).to_dict(),
        codec_config=EncodecConfig(hidden_size=HIDDEN, num_filters=4, num_lstm_layers=1).to_dict(),
    )
    model = BarkModel(config)
    # Random weights never emit the end token, so cap the semantic stage (~0.2 s of audio).
    generation_config = BarkGenerationConfig(
        semantic_config=BarkSemanticGenerationConfig(max_new_tokens=10).to_dict(),
        coarse_acoustics_config=BarkCoarseGenerationConfig().to_dict(),
        fine_acoustics_config=BarkFineGenerationConfig().to_dict(),
        sample_rate=24_000,
    )
    # BarkGenerationConfig skips GenerationConfig's defaults, which save_pretrained validates.
    for key, value in GenerationConfig().__dict__.items():
        if not hasattr(generation_config, key):
            setattr(generation_config, key, value)
    model.generation_config = generation_config
    model.save_pretrained(folder)

    rng = np.random.default_rng(0)

    def prompts() -> dict[str, np.ndarray]:
        return {
            "semantic_prompt": rng.integers(0, 10_000, 20),
            "coarse_prompt": rng.integers(0, 1024, (2, 30)),
            "fine_prompt": rng.integers(0, 1024, (8, 30)),
        }

    (folder / "voices").mkdir(exist_ok=True)
    for name in voices:
        np.savez(folder / "voices" / f"{name}.npz", **prompts())
    (folder / "speaker_embeddings" / "v2").mkdir(parents=True, exist_ok=True)
    index = {"repo_or_path": "suno/bark"}
    index["v2/fr_speaker_2"] = {}
    for key, array in prompts().items():
        relative = f"speaker_embeddings/v2/fr_speaker_2_{key}.npy"
        np.save(folder / relative, array)
        index["v2/fr_speaker_2"][key] = relative
    (folder / "speaker_embeddings_path.json").write_text(json.dumps(index))
    return folder


# Reference audio -----------------------------------------------------------------------------


def write_reference_wav(
    path: Path, seconds: float = 3.0, sample_rate: int = 44_100, pitch: float = 180.0
) -> Path:
    """A stereo tone with noise (exercises down-mixing and resampling of references)."""
    import soundfile

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    rng = np.random.default_rng(int(pitch))
    tone = 0.3 * np.sin(2 * np.pi * pitch * t) + 0.05 * rng.standard_normal(t.size)
    soundfile.write(str(path), np.stack([tone, tone * 0.8], axis=1).astype(np.float32), sample_rate)
    return path
