"""Whole-network inference of the course U-Net, one callable per framework (for ``tconv bench``).

``unet_inference(framework, batch)`` builds the course U-Net (96x128x3, n_filters=32,
n_classes=23, depth 4) with the same seeded weights in tconv (NumPy), Keras (TensorFlow
backend, ``model(x, training=False)``) or PyTorch (:func:`tconv.nn.to_torch`, ``eval``,
``no_grad``), and returns ``(run, output)``: ``run()`` does one forward pass on a fixed
seeded input of ``batch`` images; ``output()`` returns the last result channels-last as
NumPy (to check the three agree). Frameworks are imported only when asked for.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from tconv.nn.unet import build_unet, unet

__all__ = ["unet_inference", "COURSE"]

COURSE = dict(input_size=(96, 128, 3), n_filters=32, n_classes=23, depth=4)


def _weights(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            fan_in = max(1, int(np.prod(weights[0].shape[:-1])))
            layer.set_weights([(rng.standard_normal(w.shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
                               for w in weights])


def unet_inference(framework: str, batch: int, seed: int = 0) -> tuple[Callable[[], None], Callable[[], np.ndarray]]:
    """One forward pass of the course U-Net in ``framework`` ('tconv', 'keras' or 'torch')."""
    model = unet(**COURSE)
    _weights(model, seed)
    x = np.random.default_rng(seed + 1).random((batch, 96, 128, 3), dtype=np.float32)
    last: list = [None]
    if framework == "tconv":
        def run():
            last[0] = model(x)
        return run, lambda: last[0]
    if framework == "keras":
        import keras

        kmodel = build_unet(keras.layers, keras.Input, keras.Model, **COURSE)
        kmodel.set_weights(model.get_weights())  # same layer order, same layouts
        xt = keras.ops.convert_to_tensor(x)

        def run():
            last[0] = kmodel(xt, training=False)
        return run, lambda: np.asarray(last[0])
    if framework == "torch":
        import torch

        from tconv.nn.torch_model import to_torch

        tmodel = to_torch(model)
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

        def run():
            with torch.no_grad():
                last[0] = tmodel(xt)
        return run, lambda: last[0].numpy().transpose(0, 2, 3, 1)
    raise ValueError(f"framework={framework!r} must be 'tconv', 'keras' or 'torch'")
