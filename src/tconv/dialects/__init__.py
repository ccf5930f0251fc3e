"""Each framework's own spelling of convolution and transposed convolution.

``keras``, ``tf``, ``torch``, ``jax`` and ``onnx`` take the framework's arguments,
defaults, data formats and kernel layouts, resolve them to a neutral
:class:`~tconv.geometry.Geometry`, and run tconv's kernels. They refuse where the
framework refuses, raising :class:`~tconv.errors.TconvError` in its vocabulary.

Import one by name: ``from tconv.dialects import torch``. Nothing here imports a
framework.
"""

from tconv.dialects._common import DIALECTS

__all__ = list(DIALECTS)


def __getattr__(name: str):
    if name in DIALECTS:
        import importlib

        return importlib.import_module(f"tconv.dialects.{name}")
    raise AttributeError(name)
