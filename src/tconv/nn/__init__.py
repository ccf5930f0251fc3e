"""tconv.nn: inference layers with Keras 3's names and weight layouts, a functional
model API, the course U-Net, its shape planner, and safe weight loading.

Layers (channels-last by default; Keras' arguments)
    Input, InputLayer, Conv1D, Conv2D, Conv3D, Conv1DTranspose, Conv2DTranspose,
    Conv3DTranspose, MaxPooling2D, UpSampling2D ('nearest', 'bilinear'), Concatenate,
    Dropout, BatchNormalization, Activation, ReLU, Softmax, Cropping2D, ZeroPadding2D
Models
    Model(inputs, outputs)      callable on NumPy arrays; .layers .get_layer .summary
                                .trace (shapes + Geometry per layer) .load_weights .save_weights
    unet(...)                   the course U-Net (and the paper's 'valid' variant)
    plan_unet(...)              per-level shapes, the first failing level, fixes
Weights (nothing is unpickled)
    load_keras(path)            a .keras archive -> Model (supported layers only)
    model.load_weights(path)    .weights.h5 (Keras 3), .safetensors, .pt/.pth (weights_only)
    to_torch(model)             the equivalent torch.nn.Module (torch imported lazily)
    load_shipped()              the small U-Net trained on synthetic shapes (nn/models/)
"""

from tconv.nn.layers import (Activation, BatchNormalization, Concatenate, Conv1D,
                             Conv1DTranspose, Conv2D, Conv2DTranspose, Conv3D, Conv3DTranspose,
                             Cropping2D, Dropout, Input, InputLayer, KerasTensor, Layer,
                             MaxPooling2D, ReLU, Softmax, UpSampling2D, ZeroPadding2D)
from tconv.nn.model import Model, Step
from tconv.nn.unet import build_unet, unet

__all__ = [
    "Activation", "BatchNormalization", "Concatenate", "Conv1D", "Conv1DTranspose", "Conv2D",
    "Conv2DTranspose", "Conv3D", "Conv3DTranspose", "Cropping2D", "Dropout", "Input",
    "InputLayer", "KerasTensor", "Layer", "MaxPooling2D", "Model", "ReLU", "Softmax", "Step",
    "UpSampling2D", "ZeroPadding2D", "build_unet", "unet", "load_keras", "plan_unet",
    "to_torch", "load_shipped", "SHIPPED_MODEL",
]


def __getattr__(name: str):
    # weight files, planner and torch export load lazily (h5py, torch stay optional)
    lazy = {"load_keras": "tconv.nn.io", "SHIPPED_MODEL": "tconv.nn.io", "load_shipped": "tconv.nn.io",
            "plan_unet": "tconv.nn.plan", "to_torch": "tconv.nn.torch_model"}
    if name in lazy:
        import importlib

        return getattr(importlib.import_module(lazy[name]), name)
    raise AttributeError(f"module 'tconv.nn' has no attribute {name!r}")
