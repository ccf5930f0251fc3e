"""Helpers shared by the tconv.nn and tiling tests."""

from __future__ import annotations

import numpy as np


def randomise(model, rng):
    """Weights away from zero biases and unit batch norms, so every term counts."""
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if "bn" in layer.name:
            layer.set_weights([rng.uniform(0.6, 1.4, w.shape).astype("float32") for w in weights])
        else:
            layer.set_weights([(rng.standard_normal(w.shape) * np.sqrt(2.0 / max(1, np.prod(w.shape[:-1]))))
                               .astype("float32") for w in weights])
