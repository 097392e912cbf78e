"""Importing coqui's XTTS where torchaudio and torchcodec cannot be imported.

coqui-tts refuses to import without torchaudio (and, from torch 2.9, torchcodec), and the XTTS
modules call torchaudio for two things only: `transforms.MelSpectrogram` and
`functional.resample`. torchaudio is tied to one torch release (PyPI has none for torch 2.13;
2.11's native libraries fail against it), and torchcodec needs system FFmpeg. So Parla decodes
reference audio itself (soundfile + soxr, in synthesis/engines/xtts.py) and, only while coqui is
being imported and only when torchaudio/torchcodec cannot be imported, puts small stand-ins for
them in `sys.modules`: the two torchaudio pieces re-implemented with torch and soxr (same module
layout and buffers as torchaudio, so XTTS checkpoints load strictly), and an empty torchcodec
that only satisfies coqui's import check. They are removed again right after the import, so no
other library mistakes them for the real packages; a real torchaudio, where it works, is always
preferred.
"""

import importlib
import importlib.util
import logging
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType

import numpy as np

logger = logging.getLogger(__name__)


def import_with_stand_ins(module_name: str) -> None:
    """Import `module_name` (coqui) with stand-ins where torchaudio/torchcodec cannot load."""
    # transformers caches whether torchaudio/torchcodec exist; ask before the stand-ins appear
    # so its answers stay true for the rest of the process.
    from transformers.utils import import_utils as transformers_import_utils

    for probe in ("is_torchaudio_available", "is_torchcodec_available"):
        getattr(transformers_import_utils, probe, lambda: None)()

    stand_ins: dict[str, ModuleType] = {}
    if not _importable("torchaudio"):
        torchaudio = torchaudio_stand_in()
        stand_ins.update(
            {
                "torchaudio": torchaudio,
                "torchaudio.functional": torchaudio.functional,
                "torchaudio.transforms": torchaudio.transforms,
            }
        )
    if importlib.util.find_spec("torchcodec") is None:
        # coqui only checks that torchcodec exists (for torchaudio.load, which Parla never calls).
        stand_ins["torchcodec"] = _module("torchcodec", [])
    if stand_ins:
        logger.info("xtts.import_stand_ins", extra={"modules": sorted(stand_ins)})
    sys.modules.update(stand_ins)
    try:
        importlib.import_module(module_name)
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    # A torchaudio built for another torch fails with OSError or RuntimeError, not ImportError.
    except Exception:  # noqa: BLE001
        return False
    return True


def _module(name: str, provides: list[str]) -> ModuleType:
    module = ModuleType(
        name, f"Parla's stand-in for {name} (see synthesis/engines/xtts_torchaudio.py)."
    )
    module.__spec__ = ModuleSpec(name, loader=None)  # importlib.util.find_spec() reads it
    module.__version__ = "0+parla.stand.in"

    def missing(attribute: str):
        raise AttributeError(
            f"{name}.{attribute} is not available: Parla's stand-in for {name} provides only "
            f"{', '.join(provides) or 'nothing'} (install a torchaudio matching torch for more)."
        )

    module.__getattr__ = missing
    return module


def torchaudio_stand_in() -> ModuleType:
    """A `torchaudio` with exactly what coqui's XTTS inference path calls.

    `transforms.MelSpectrogram` keeps torchaudio's submodules and buffers (`spectrogram.window`,
    `mel_scale.fb`) because the XTTS speaker encoder holds one and its weights are loaded
    strictly; `functional.resample` uses soxr (on the CPU: conditioning is computed once per voice).
    """
    import torch

    class Spectrogram(torch.nn.Module):
        def __init__(self, n_fft=400, win_length=None, hop_length=None, pad=0,
                     window_fn=torch.hann_window, power=2.0, normalized=False, wkwargs=None,
                     center=True, pad_mode="reflect", onesided=True):  # fmt: skip
            super().__init__()
            self.n_fft = n_fft
            self.win_length = win_length if win_length is not None else n_fft
            self.hop_length = hop_length if hop_length is not None else self.win_length // 2
            window = window_fn(self.win_length, **(wkwargs or {}))
            self.register_buffer("window", window)
            self.pad, self.power, self.normalized = pad, power, normalized
            self.center, self.pad_mode, self.onesided = center, pad_mode, onesided

        def forward(self, waveform):
            if self.pad > 0:
                waveform = torch.nn.functional.pad(waveform, (self.pad, self.pad), "constant")
            shape = waveform.size()
            spec = torch.stft(
                waveform.reshape(-1, shape[-1]),
                n_fft=self.n_fft,
                hop_length=self.hop_length,
                win_length=self.win_length,
                window=self.window,
                center=self.center,
                pad_mode=self.pad_mode,
                normalized=self.normalized == "frame_length",
                onesided=self.onesided,
                return_complex=True,
            )
            spec = spec.reshape(shape[:-1] + spec.shape[-2:])
            if self.normalized in (True, "window"):
                spec = spec / self.window.pow(2.0).sum().sqrt()
            return spec if self.power is None else spec.abs().pow(self.power)

    class MelScale(torch.nn.Module):
        def __init__(self, n_mels=128, sample_rate=16000, f_min=0.0, f_max=None, n_stft=201,
                     norm=None, mel_scale="htk"):  # fmt: skip
            super().__init__()
            f_max = f_max if f_max is not None else float(sample_rate // 2)
            self.register_buffer(
                "fb", melscale_fbanks(n_stft, f_min, f_max, n_mels, sample_rate, norm, mel_scale)
            )

        def forward(self, specgram):
            return torch.matmul(specgram.transpose(-1, -2), self.fb).transpose(-1, -2)

    class MelSpectrogram(torch.nn.Module):
        def __init__(self, sample_rate=16000, n_fft=400, win_length=None, hop_length=None,
                     f_min=0.0, f_max=None, pad=0, n_mels=128, window_fn=torch.hann_window,
                     power=2.0, normalized=False, wkwargs=None, center=True, pad_mode="reflect",
                     onesided=None, norm=None, mel_scale="htk"):  # fmt: skip
            super().__init__()
            win_length = win_length if win_length is not None else n_fft
            hop_length = hop_length if hop_length is not None else win_length // 2
            self.spectrogram = Spectrogram(
                n_fft=n_fft, win_length=win_length, hop_length=hop_length, pad=pad,
                window_fn=window_fn, power=power, normalized=normalized, wkwargs=wkwargs,
                center=center, pad_mode=pad_mode,
            )  # fmt: skip
            self.mel_scale = MelScale(
                n_mels, sample_rate, f_min, f_max, n_fft // 2 + 1, norm, mel_scale
            )

        def forward(self, waveform):
            return self.mel_scale(self.spectrogram(waveform))

    def melscale_fbanks(n_freqs, f_min, f_max, n_mels, sample_rate, norm=None, mel_scale="htk"):
        if mel_scale != "htk":
            raise NotImplementedError(
                "Parla's torchaudio stand-in implements only mel_scale='htk'."
            )
        all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
        m_min = 2595.0 * np.log10(1.0 + f_min / 700.0)
        m_max = 2595.0 * np.log10(1.0 + f_max / 700.0)
        f_pts = 700.0 * (10 ** (torch.linspace(m_min, m_max, n_mels + 2) / 2595.0) - 1.0)
        f_diff = f_pts[1:] - f_pts[:-1]
        slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
        down_slopes = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
        up_slopes = slopes[:, 2:] / f_diff[1:]
        fb = torch.max(torch.zeros(1), torch.min(down_slopes, up_slopes))
        if norm == "slaney":
            fb *= (2.0 / (f_pts[2 : n_mels + 2] - f_pts[:n_mels])).unsqueeze(0)
        return fb

    def resample(waveform, orig_freq, new_freq, *args, **kwargs):
        """soxr instead of torchaudio's sinc kernel; the filter options are not used."""
        import soxr

        if orig_freq == new_freq:
            return waveform
        shape = waveform.shape
        frames = waveform.detach().reshape(-1, shape[-1]).to("cpu", torch.float32).numpy().T
        resampled = soxr.resample(
            np.ascontiguousarray(frames), int(orig_freq), int(new_freq), quality="HQ"
        )
        channels_first = np.ascontiguousarray(resampled.reshape(resampled.shape[0], -1).T)
        out = torch.from_numpy(channels_first).reshape(*shape[:-1], -1)
        return out.to(waveform.device, waveform.dtype)

    functional = _module("torchaudio.functional", ["resample", "melscale_fbanks"])
    functional.resample = resample
    functional.melscale_fbanks = melscale_fbanks
    transforms = _module("torchaudio.transforms", ["Spectrogram", "MelScale", "MelSpectrogram"])
    transforms.Spectrogram = Spectrogram
    transforms.MelScale = MelScale
    transforms.MelSpectrogram = MelSpectrogram
    torchaudio = _module("torchaudio", ["functional.resample", "transforms.MelSpectrogram"])
    torchaudio.functional, torchaudio.transforms = functional, transforms
    return torchaudio
