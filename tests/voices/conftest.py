import io

import numpy as np
import pytest
import soundfile as sf

from synthesis.engines.base import SynthesisRequest
from synthesis.engines.registry import loaded_engine
from synthesis.types import Segment


@pytest.fixture(scope="session")
def speech_wav() -> bytes:
    """About five seconds of real speech (Piper), as a 48 kHz stereo WAV a tenant might upload."""
    engine = loaded_engine("piper")
    text = "Welcome to our course. Today we will learn how sound becomes speech, step by step."
    chunks = list(engine.synthesize([Segment(text)], SynthesisRequest(voice="en_US-joe-medium")))
    samples = np.concatenate([c.samples for c in chunks])
    stereo = np.stack([samples, samples], axis=1)
    buffer = io.BytesIO()
    sf.write(buffer, stereo, chunks[0].sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
