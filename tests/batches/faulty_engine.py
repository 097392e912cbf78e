"""An engine that misbehaves on purpose, for the reliability tests (PARLA_EXTRA_ENGINES).

- "faulty:crash" kills its worker process the moment it synthesises (a segfaulting model,
  or one that runs out of memory): SIGKILL, as the kernel's OOM killer sends.
- "faulty:hang" never returns (a wedged model), in Python code so a time limit can stop it.
- "faulty:flaky" speaks two sentences, then fails (a model that falls over mid-stream).
"""

import os
import signal
import time

import numpy as np

from synthesis.engines.base import Engine, EngineInfo, Licence
from synthesis.types import AudioChunk

_LICENCE = Licence("test", commercial_use=True)


class FaultyEngine(Engine):
    name = "faulty"

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(name="faulty", model_version="faulty-1", languages=("en-US",), sample_rate=16000,
                          can_clone=False, needs_gpu=False, licence=_LICENCE)

    def voices(self):
        return [self.catalog_voice(name, language="en-US", licence=_LICENCE, sample_rate=16000)
                for name in ("crash", "hang", "flaky")]

    def load(self) -> None:
        pass

    @property
    def loaded(self) -> bool:
        return True

    def synthesize(self, segments, request):
        for index, _segment in enumerate(segments):
            if request.voice == "crash":
                os.kill(os.getpid(), signal.SIGKILL)
            if request.voice == "flaky":
                if index == 2:
                    raise RuntimeError("the model fell over")
                yield AudioChunk(samples=np.full(16000, 0.1, np.float32), sample_rate=16000)
                continue
            while True:
                time.sleep(0.05)
            yield AudioChunk(samples=np.zeros(160, np.float32), sample_rate=16000)
