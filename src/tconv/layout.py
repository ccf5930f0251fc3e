"""Layout strings and the axis permutations between them.

A layout names each axis with one letter: ``N`` batch, ``C`` channels, ``I``/``O``
kernel input/output channels, and spatial letters (``W``; ``H W``; ``D H W`` by
default, though any other letters work as JAX's ``dimension_numbers`` allow).
tconv's kernels work in one neutral layout: data channels-last ``(N, *spatial, C)``
and kernels ``(*spatial, I, O)``, the forward convolution's HWIO.
"""

from __future__ import annotations

import numpy as np

from tconv.errors import TconvError

__all__ = ["SPATIAL", "data_layout", "kernel_layout", "permutation", "permute"]

#: default spatial letters per rank
SPATIAL = {1: "W", 2: "HW", 3: "DHW"}


def data_layout(rank: int, channels_first: bool) -> str:
    """``'NCHW'`` or ``'NHWC'`` (and their 1-D/3-D forms).

    >>> data_layout(3, channels_first=False)
    'NDHWC'
    """
    spatial = SPATIAL[rank]
    return "NC" + spatial if channels_first else "N" + spatial + "C"


def kernel_layout(rank: int, order: str) -> str:
    """A kernel layout from an order of ``I``, ``O`` and ``S`` (spatial), e.g. ``'OIS'`` -> ``'OIHW'``.

    >>> kernel_layout(2, "SIO"), kernel_layout(1, "IOS")
    ('HWIO', 'IOW')
    """
    return order.replace("S", SPATIAL[rank])


def permutation(src: str, dst: str) -> tuple[int, ...]:
    """Axes of ``src`` in the order of ``dst`` (both strings of the same letters).

    >>> permutation("OIHW", "HWIO")
    (2, 3, 1, 0)
    """
    if sorted(src) != sorted(dst) or len(set(src)) != len(src):
        raise TconvError("layout", (src, dst), "must name the same axes, each once")
    return tuple(src.index(letter) for letter in dst)


def permute(array: np.ndarray, src: str, dst: str) -> np.ndarray:
    """``array`` (laid out as ``src``) as a view laid out as ``dst``."""
    if array.ndim != len(src):
        raise TconvError("layout", src, f"names {len(src)} axes but the array has {array.ndim}")
    return array.transpose(permutation(src, dst))
