"""The search space: a parameter vector θ mapped to a Kokoro style pack (see voices.matching)."""

import numpy as np

TIMBRE_DIMENSIONS = 128  # of the 256: the decoder's half of a style vector
_LOGIT_LIMIT = 6.0
_COEFFICIENT_LIMIT = 2.5


class PackSpace:
    """Maps a parameter vector θ = (5 mixing logits, k timbre coefficients) to a style pack."""

    def __init__(self, packs: dict[str, np.ndarray], *, directions: int, seed: int) -> None:
        self.names = list(packs)
        self.packs = np.stack([packs[name].reshape(-1, 256).astype(np.float32) for name in self.names])
        spread = self.packs.std(axis=0).mean(axis=0)  # per dimension, over packs, averaged over rows
        # Kokoro feeds the first half of a style vector to the decoder (timbre) and the second to
        # the prosody predictor (durations, pitch). Random steps in the predictor half garble the
        # words; there the search only mixes the bundled packs, which are known to speak well.
        spread[TIMBRE_DIMENSIONS:] = 0.0
        rng = np.random.default_rng(seed)
        self.directions = rng.standard_normal((directions, 256)).astype(np.float32) * spread
        self.size = len(self.names) + directions

    def weights(self, theta: np.ndarray) -> np.ndarray:
        logits = theta[: len(self.names)]
        exp = np.exp(logits - logits.max())
        return exp / exp.sum()

    def pack(self, theta: np.ndarray) -> np.ndarray:
        mix = np.tensordot(self.weights(theta), self.packs, axes=1)
        offset = theta[len(self.names):] @ self.directions
        return (mix + offset).astype(np.float32).reshape(-1, 1, 256)

    def clip(self, theta: np.ndarray) -> np.ndarray:
        theta = theta.copy()
        count = len(self.names)
        theta[:count] = np.clip(theta[:count], -_LOGIT_LIMIT, _LOGIT_LIMIT)
        theta[count:] = np.clip(theta[count:], -_COEFFICIENT_LIMIT, _COEFFICIENT_LIMIT)
        return theta
