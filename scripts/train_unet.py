"""Train the shipped U-Net on synthetic shapes with Keras (TensorFlow backend), reproducibly.

    python scripts/train_unet.py [--seconds 240] [--out src/tconv/nn/models/unet_shapes.keras]

The architecture is tconv.nn.build_unet on keras.layers (the course U-Net at a small
width: n_filters=8, depth=3, 4 classes, 96x128x3 input); the data are
tconv.nn.data.shapes with fixed seeds (training set seed 1, validation seed 2; the demo
evaluates on seed 1000+). Seeds: keras.utils.set_random_seed(0) and TensorFlow op
determinism. Training stops after --epochs or when --seconds have passed.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ARCH = dict(input_size=(96, 128, 3), n_filters=8, n_classes=4, depth=3, dropout=0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=240)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--train", type=int, default=1200)
    parser.add_argument("--out", default="src/tconv/nn/models/unet_shapes.keras")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from tconv.nn.data import mean_iou, shapes
    from tconv.nn.unet import build_unet

    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    x, y = shapes(args.train, size=ARCH["input_size"][:2], seed=1)
    xv, yv = shapes(100, size=ARCH["input_size"][:2], seed=2)
    model = build_unet(keras.layers, keras.Input, keras.Model, name="unet_shapes", **ARCH)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    start = time.time()

    class Budget(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            pred = np.argmax(self.model.predict(xv, verbose=0), -1)
            print(f"epoch {epoch + 1}: loss {logs['loss']:.4f}  val mean IoU {mean_iou(pred, yv):.3f}"
                  f"  ({time.time() - start:.0f} s)", flush=True)
            if time.time() - start > args.seconds:
                self.model.stop_training = True

    model.fit(x, y, batch_size=16, epochs=args.epochs, shuffle=True, verbose=0,
              callbacks=[Budget()])
    # save the weights in an uncompiled twin: no optimizer state in the shipped file
    shipped = build_unet(keras.layers, keras.Input, keras.Model, name="unet_shapes", **ARCH)
    shipped.set_weights(model.get_weights())
    shipped.save(args.out)
    print(f"saved {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
