"""The U-Net of the seed's course (and of the original paper), built on any Keras-like layer set.

:func:`unet` builds it from :mod:`tconv.nn`'s layers; :func:`build_unet` takes the layer
namespace as an argument, so the very same code builds the real Keras model
(``build_unet(keras.layers, keras.Input, keras.Model, ...)``): the training script and
the tests use that, so both models have the same layers, names and order.

The course architecture (DeepLearning.AI, course 4 week 3, ``unet_model``): ``depth``
encoder blocks of two 3x3 'same' ReLU convolutions (dropout on the deepest encoder
block and on the bottleneck) followed by 2x2 max pooling; a bottleneck block; ``depth``
decoder blocks of ``Conv2DTranspose(n, 3, strides=2, padding='same')``, concatenation
with the skip (upsampled tensor first) and two 3x3 'same' ReLU convolutions; then a
3x3 ReLU convolution and a 1x1 convolution to ``n_classes`` logits.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tconv.errors import TconvError
from tconv.geometry import centre_crop

__all__ = ["unet", "build_unet", "UNET_DEFAULTS"]

UNET_DEFAULTS = dict(input_size=(96, 128, 3), n_filters=32, n_classes=23, depth=4,
                     upsampling="transpose", padding="same", dropout=0.3, up_kernel=None,
                     interpolation="nearest", batch_norm=False, final_activation=None)


def _check(depth, upsampling, padding, interpolation, n_filters, n_classes, dropout):
    if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= 8:
        raise TconvError("depth", depth, "must be an integer from 1 to 8")
    if not isinstance(upsampling, str) or upsampling not in ("transpose", "upsample"):
        raise TconvError("upsampling", upsampling, "must be 'transpose' (Conv2DTranspose) or "
                         "'upsample' (UpSampling2D + Conv2D)")
    if not isinstance(padding, str) or padding not in ("same", "valid"):
        raise TconvError("padding", padding, "must be 'same' (the course) or 'valid' (the paper)")
    if not isinstance(interpolation, str) or interpolation not in ("nearest", "bilinear"):
        raise TconvError("interpolation", interpolation, "must be 'nearest' or 'bilinear'")
    for name, value in (("n_filters", n_filters), ("n_classes", n_classes)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise TconvError(name, value, "must be a positive integer")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise TconvError("dropout", dropout, "must be a number in [0, 1)")


def build_unet(layers: Any, Input: Any, Model: Any, input_size=(96, 128, 3), n_filters=32,
               n_classes=23, depth=4, upsampling="transpose", padding="same", dropout=0.3,
               up_kernel=None, interpolation="nearest", batch_norm=False,
               final_activation=None, name="unet"):
    """Build the U-Net from ``layers`` (a module with Keras' layer classes), ``Input`` and ``Model``.

    ``padding='valid'`` is the paper's variant: every convolution 'valid', the up
    convolution 2x2 (``up_kernel`` default 2, else 3), and each skip centre-cropped
    (``Cropping2D``) to the upsampled size, computed for ``input_size``. The crop is
    the same for every input size whose pooled sizes are all even.
    """
    _check(depth, upsampling, padding, interpolation, n_filters, n_classes, dropout)
    if isinstance(input_size, (str, bytes)) or not isinstance(input_size, (tuple, list)) or not all(
            n is None or (isinstance(n, int) and not isinstance(n, bool) and n >= 1) for n in input_size):
        raise TconvError("input_size", input_size, "must be (height, width, channels): positive integers or None")
    if not isinstance(batch_norm, bool):
        raise TconvError("batch_norm", batch_norm, "must be True or False")
    if not (final_activation is None or isinstance(final_activation, str)):
        raise TconvError("final_activation", final_activation, "must be an activation's name or None")
    if not isinstance(name, str):
        raise TconvError("name", name, "must be a string")
    if up_kernel is not None and (not isinstance(up_kernel, int) or isinstance(up_kernel, bool) or up_kernel < 1):
        raise TconvError("up_kernel", up_kernel, "must be a positive integer or None")
    if up_kernel is None:
        up_kernel = 3 if padding == "same" else 2
    L = layers

    def conv(x, filters, label, kernel=3, activation="relu", pad=padding):
        x = L.Conv2D(filters, kernel, padding=pad, activation=None if batch_norm else activation,
                     kernel_initializer="he_normal" if activation == "relu" else "glorot_uniform",
                     name=label)(x)
        if batch_norm and activation is not None:
            x = L.BatchNormalization(name=f"{label}_bn")(x)
            x = L.Activation(activation, name=f"{label}_{activation}")(x)
        return x

    inputs = Input(shape=tuple(input_size), name="image")
    x = inputs
    skips = []
    for level in range(depth + 1):
        filters = n_filters * 2 ** level
        block = "bottleneck" if level == depth else f"enc{level}"
        x = conv(x, filters, f"{block}_conv1")
        x = conv(x, filters, f"{block}_conv2")
        if dropout > 0 and level >= depth - 1:
            x = L.Dropout(dropout, name=f"{block}_dropout")(x)
        if level < depth:
            skips.append(x)
            x = L.MaxPooling2D(pool_size=(2, 2), name=f"{block}_pool")(x)
    for level in reversed(range(depth)):
        filters = n_filters * 2 ** level
        block = f"dec{level}"
        if upsampling == "transpose":
            up = L.Conv2DTranspose(filters, up_kernel, strides=(2, 2),
                                   padding="same" if padding == "same" else "valid",
                                   name=f"{block}_up")(x)
        else:
            up = L.UpSampling2D(size=(2, 2), interpolation=interpolation, name=f"{block}_upsample")(x)
            up = L.Conv2D(filters, up_kernel, padding="same", name=f"{block}_up")(up)
        skip = skips[level]
        if padding == "valid":
            crops = tuple(centre_crop(int(s), int(u)) for s, u in zip(skip.shape[1:3], up.shape[1:3]))
            if any(c < 0 for pair in crops for c in pair):
                raise TconvError("input_size", tuple(input_size),
                                 f"gives a skip {tuple(skip.shape[1:3])} smaller than the "
                                 f"upsampled {tuple(up.shape[1:3])} at level {level}")
            if any(c for pair in crops for c in pair):
                skip = L.Cropping2D(cropping=crops, name=f"{block}_crop")(skip)
        x = L.Concatenate(axis=-1, name=f"{block}_concat")([up, skip])
        x = conv(x, filters, f"{block}_conv1")
        x = conv(x, filters, f"{block}_conv2")
    x = conv(x, n_filters, "head_conv")
    outputs = L.Conv2D(n_classes, 1, padding="same", activation=final_activation, name="logits")(x)
    return Model(inputs, outputs, name=name)


def unet(input_size=(96, 128, 3), n_filters=32, n_classes=23, depth=4, upsampling="transpose",
         padding="same", dropout=0.3, up_kernel=None, interpolation="nearest", batch_norm=False,
         final_activation=None, name="unet"):
    """The course U-Net as a :class:`tconv.nn.Model` (random weights; load trained ones with
    ``model.load_weights(path)``).

    Parameters
    ----------
    input_size : (height, width, channels)
        The default input shape; the model runs on any size its architecture allows
        (see ``tconv unet plan``).
    n_filters : int
        Filters of the first level; level ``l`` has ``n_filters * 2**l``.
    n_classes : int
        Output channels (logits).
    depth : int
        Pooling levels (the course: 4).
    upsampling : 'transpose' or 'upsample'
        ``Conv2DTranspose(n, up_kernel, strides=2)`` or ``UpSampling2D`` + ``Conv2D(n, up_kernel)``.
    padding : 'same' or 'valid'
        'valid' is the original paper's variant (skips cropped).
    dropout : float
        Rate on the deepest encoder block and the bottleneck (identity at inference).
    up_kernel, interpolation, batch_norm, final_activation
        Variants: up convolution kernel, UpSampling2D interpolation, BatchNormalization
        after each 3x3 convolution, activation of the logits.

    Examples
    --------
    >>> model = unet(input_size=(32, 32, 3), n_filters=4, n_classes=3, depth=2)
    >>> model.output_shape
    (None, 32, 32, 3)
    """
    from tconv.nn import layers as tconv_layers
    from tconv.nn.model import Model

    return build_unet(tconv_layers, tconv_layers.Input, Model, input_size, n_filters, n_classes,
                      depth, upsampling, padding, dropout, up_kernel, interpolation, batch_norm,
                      final_activation, name)


def keras_namespace():
    """``(layers, Input, Model)`` of the real Keras (imported lazily), for :func:`build_unet`."""
    try:
        import keras
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise TconvError("keras", None, "is not installed: pip install keras tensorflow-cpu") from exc
    return SimpleNamespace(layers=keras.layers, Input=keras.Input, Model=keras.Model)
