"""The seed's case, run for real: Keras' Conv2DTranspose(512, 3, strides=2, padding='same')
on an 8x8x1024 feature map, in tconv's Keras dialect (NumPy only), then explained.

    python examples/seed.py
"""

import numpy as np

import tconv
from tconv.dialects import keras

layer = keras.Conv2DTranspose(512, 3, strides=2, padding="same")
x = np.random.default_rng(0).standard_normal((1, 8, 8, 1024)).astype(np.float32)
y = layer(x)
print(f"Conv2DTranspose(512, 3, strides=2, padding='same'): {x.shape} -> {y.shape}")
print(f"kernel {layer.kernel.shape}, bias {layer.bias.shape}\n")
print(tconv.explain("keras.Conv2DTranspose(512, 3, strides=2, padding='same')", (8, 8, 1024)))
