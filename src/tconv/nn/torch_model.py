"""The PyTorch model equivalent to a :class:`tconv.nn.Model` (torch imported lazily).

Each tconv layer becomes the torch module that computes the same thing on NCHW data,
named as the layer (so the state dict reads ``<layer>.weight``): ``Conv2d`` with the
Keras 'same' padding given explicitly (asymmetric pads through ``F.pad``),
``ConvTranspose2d`` with no padding followed by Keras' crop (Keras/TF crop the odd cell
at the end, which PyTorch's ``padding``/``output_padding`` cannot express), ``MaxPool2d``,
``Upsample`` (``align_corners=False`` for bilinear: TF's half-pixel centres),
``BatchNorm2d`` and the rest. Crops and pads are those of the model's own input size
(the Geometry of each layer there); for the U-Nets of :func:`tconv.nn.unet` they do not
depend on the size.

>>> from tconv.nn import unet
>>> torch_model = to_torch(unet((32, 32, 3), n_filters=4, n_classes=2, depth=2))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tconv.errors import TconvError
from tconv.nn import layers as L
from tconv.nn.model import Model

__all__ = ["to_torch"]


def _torch():
    try:
        import torch
    except ImportError:
        raise TconvError("torch", None, "is needed for to_torch: pip install torch") from None
    return torch


def to_torch(model: Model, input_shape=None) -> Any:
    """A ``torch.nn.Module`` computing ``model`` on ``(N, C, H, W)`` tensors, with its weights.

    ``input_shape`` (channels-last, batch included) fixes the pads and crops read from
    each layer's Geometry; it defaults to the model's input shape.
    """
    torch = _torch()
    nn, F = torch.nn, torch.nn.functional
    steps = model.trace(input_shape)

    class Crop(nn.Module):
        def __init__(self, crops):
            super().__init__()
            self.crops = crops  # ((lo, hi), ...) per spatial axis, negative: zero padding

        def forward(self, x):
            pads = []
            for lo, hi in reversed(self.crops):
                pads += [-lo, -hi]
            return F.pad(x, pads) if any(pads) else x

    class Pad(Crop):
        pass

    class Act(nn.Module):
        def __init__(self, name, **kw):
            super().__init__()
            self.name, self.kw = name, kw

        def forward(self, x):
            n = self.name
            if n == "relu":
                return torch.relu(x)
            if n == "sigmoid":
                return torch.sigmoid(x)
            if n == "tanh":
                return torch.tanh(x)
            if n == "softmax":
                return torch.softmax(x, dim=1)
            if n == "linear":
                return x
            if n == "relu_layer":
                kw = self.kw
                y = torch.where(x >= kw["threshold"], x, kw["negative_slope"] * (x - kw["threshold"]))
                return y if kw["max_value"] is None else torch.clamp(y, max=kw["max_value"])
            raise TconvError("activation", n, "has no torch equivalent in to_torch")

    def conv_module(layer, step):
        op, g = layer.op, step.geometry
        rank = op.rank
        if op.data_format != "channels_last":
            raise TconvError("data_format", op.data_format, "to_torch handles channels_last models")
        if not op.transposed:
            cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[rank - 1]
            conv = cls(g.input_channels, op.filters, op.kernel_size, stride=op.strides,
                       dilation=op.dilation_rate, groups=op.groups, bias=op.use_bias)
            pads = tuple((a.pad_lo, a.pad_hi) for a in g.axes)
            if any(a.stride > 1 for a in g.axes) and op.padding == "same":
                raise TconvError("strides", op.strides, "with padding='same' depends on the input "
                                 "size; to_torch supports stride 1 'same' convolutions")
            pre = [Pad(tuple((-lo, -hi) for lo, hi in pads))] if any(p for pair in pads for p in pair) else []
        else:
            cls = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[rank - 1]
            conv = cls(g.input_channels, op.filters, op.kernel_size, stride=op.strides,
                       dilation=op.dilation_rate, bias=op.use_bias)
            crops = tuple((a.crop_lo, a.crop_hi) for a in g.axes)
            pre = []
        post = [Crop(crops)] if op.transposed and any(c for pair in crops for c in pair) else []
        name = layer._activation_name
        if name != "linear":
            post.append(Act(name))
        return (pre, conv, post), conv

    modules: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for step in steps:
        layer = step.layer
        if isinstance(layer, L.InputLayer) or isinstance(layer, (L.Dropout, L.Concatenate)):
            continue
        if isinstance(layer, L._ConvWrapper):
            modules[layer.name], params[layer.name] = conv_module(layer, step)
        elif isinstance(layer, L.MaxPooling2D):
            if layer.padding != "valid":
                raise TconvError("padding", layer.padding, "to_torch supports 'valid' pooling")
            modules[layer.name] = nn.MaxPool2d(layer.pool_size, layer.strides)
        elif isinstance(layer, L.UpSampling2D):
            modules[layer.name] = nn.Upsample(scale_factor=layer.size, mode=layer.interpolation,
                                              **({"align_corners": False}
                                                 if layer.interpolation == "bilinear" else {}))
        elif isinstance(layer, L.BatchNormalization):
            if layer.axis not in (-1, 3):
                raise TconvError("axis", layer.axis, "to_torch supports channels-last normalisation")
            bn = nn.BatchNorm2d(len(layer.moving_mean), eps=layer.epsilon)
            modules[layer.name], params[layer.name] = ([], bn, []), bn
        elif isinstance(layer, L.Activation):
            modules[layer.name] = Act(layer.activation)
        elif isinstance(layer, L.ReLU):
            modules[layer.name] = Act("relu_layer", max_value=layer.max_value,
                                      negative_slope=layer.negative_slope, threshold=layer.threshold)
        elif isinstance(layer, L.Softmax):
            if layer.axis not in (-1, 3):
                raise TconvError("axis", layer.axis, "to_torch supports the channels axis")
            modules[layer.name] = Act("softmax")
        elif isinstance(layer, L.Cropping2D):
            modules[layer.name] = Crop(layer.cropping)
        elif isinstance(layer, L.ZeroPadding2D):
            modules[layer.name] = Pad(tuple((-lo, -hi) for lo, hi in layer.padding))
        else:
            raise TconvError("layer", layer.name, f"({layer.keras_class}) has no torch equivalent")

    plan = [(s.layer.name, type(s.layer).__name__, s.inputs) for s in steps]
    input_steps = [i for i, s in enumerate(steps) if isinstance(s.layer, L.InputLayer)]
    output_steps = [max(i for i, s in enumerate(steps) if s.layer is t.node.layer) for t in model.outputs]

    class GraphModule(nn.Module):
        """The tconv model's graph on NCHW tensors."""

        def __init__(self):
            super().__init__()
            # the layers with weights are attributes named as the tconv layer, so the state
            # dict reads '<layer>.weight'; pads, crops and activations hold no state
            self.extra = {}
            for key, module in modules.items():
                pre, core, post = module if isinstance(module, tuple) else ([], module, [])
                self.add_module(key, core)
                self.extra[key] = (pre, post)

        def forward(self, *inputs):
            values: list[Any] = [None] * len(plan)
            for i, x in zip(input_steps, inputs):
                values[i] = x
            for i, (name, kind, parents) in enumerate(plan):
                if kind == "InputLayer":
                    continue
                args = [values[p] for p in parents]
                if kind == "Concatenate":
                    values[i] = torch.cat(args, dim=1)
                elif kind == "Dropout":
                    values[i] = args[0]
                else:
                    pre, post = self.extra[name]
                    x = args[0]
                    for f in pre:
                        x = f(x)
                    x = getattr(self, name)(x)
                    for f in post:
                        x = f(x)
                    values[i] = x
            outs = [values[i] for i in output_steps]
            return outs[0] if len(outs) == 1 else outs

    torch_model = GraphModule().eval()
    with torch.no_grad():
        for layer in model.layers:
            if layer.name not in params:
                continue
            weights = layer.get_weights()
            target = params[layer.name]
            if isinstance(layer, L.BatchNormalization):
                names = ("weight", "bias", "running_mean", "running_var")
                for key, w in zip(names, weights):
                    getattr(target, key).copy_(torch.from_numpy(np.array(w)))
                continue
            k = weights[0]
            rank = k.ndim - 2
            target.weight.copy_(torch.from_numpy(np.ascontiguousarray(
                k.transpose((rank + 1, rank) + tuple(range(rank))))))
            if layer.op.use_bias:
                target.bias.copy_(torch.from_numpy(np.array(weights[1])))
    return torch_model
