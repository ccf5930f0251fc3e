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

__all__ = ["SPATIAL", "data_layout", "kernel_layout", "mirrored_kernel", "permutation", "permute"]

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


def mirrored_kernel(kernel: np.ndarray, groups: int = 1) -> np.ndarray:
    """A neutral kernel ``(*spatial, I/groups, O)`` as the kernel of the mirrored convolution
    (:meth:`tconv.geometry.Geometry.mirrored`): each spatial axis reversed, and within each
    group the channels the other way, ``(*spatial, O/groups, I)``; a view where groups is 1.

    >>> w = np.arange(12.0).reshape(3, 2, 2)    # 3 taps, 2 in, 2 out
    >>> mirrored_kernel(w)[0].tolist() == w[2].T.tolist()
    True
    """
    rank = kernel.ndim - 2
    flipped = kernel[(slice(None, None, -1),) * rank]
    if groups == 1:
        return flipped.swapaxes(-1, -2)
    spatial, (inputs, outputs) = flipped.shape[:rank], flipped.shape[rank:]
    per_group = flipped.reshape(spatial + (inputs, groups, outputs // groups))
    order = tuple(range(rank)) + (rank + 2, rank + 1, rank)
    return per_group.transpose(order).reshape(spatial + (outputs // groups, groups * inputs))
