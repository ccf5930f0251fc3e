"""Synthetic images of shapes for segmentation, reproducible from a seed (NumPy only).

Each image is ``(height, width, 3)`` float32 in ``[0, 1]``: a smooth random background
with noise and a few filled shapes drawn over each other. The label image gives each
pixel its class: 0 background, 1 circle, 2 rectangle, 3 triangle (the last shape drawn
wins). Colours vary widely within a class (a loose hue per class), so the network must
use shape as well as colour.

>>> images, labels = shapes(2, size=(32, 48), seed=0)
>>> images.shape, images.dtype, labels.shape, labels.dtype
((2, 32, 48, 3), dtype('float32'), (2, 32, 48), dtype('uint8'))
>>> bool((shapes(1, seed=5)[0] == shapes(1, seed=5)[0]).all())
True
"""

from __future__ import annotations

import numpy as np

__all__ = ["CLASSES", "shapes", "iou", "mean_iou"]

CLASSES = ("background", "circle", "rectangle", "triangle")
_HUES = {1: (0.95, 0.35, 0.30), 2: (0.30, 0.85, 0.35), 3: (0.30, 0.45, 0.95)}


def _one(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(0.0, 0.5, 3)
    tilt = rng.uniform(-0.25, 0.25, (2, 3))
    image = base + tilt[0] * (yy / height)[..., None] + tilt[1] * (xx / width)[..., None]
    label = np.zeros((height, width), np.uint8)
    scale = min(height, width)
    for _ in range(rng.integers(2, 6)):
        kind = int(rng.integers(1, 4))
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        r = rng.uniform(0.08, 0.22) * scale
        if kind == 1:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        elif kind == 2:
            ry, rx = r * rng.uniform(0.6, 1.2), r * rng.uniform(0.6, 1.2)
            mask = (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
        else:
            angle = rng.uniform(0, 2 * np.pi)
            corners = [(cy + 1.3 * r * np.sin(angle + k * 2 * np.pi / 3),
                        cx + 1.3 * r * np.cos(angle + k * 2 * np.pi / 3)) for k in range(3)]
            mask = np.ones((height, width), bool)
            for (y0, x0), (y1, x1) in zip(corners, corners[1:] + corners[:1]):
                mask &= (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0) >= 0
        colour = np.clip(np.asarray(_HUES[kind]) + rng.uniform(-0.35, 0.35, 3), 0, 1)
        image[mask] = colour
        label[mask] = kind
    image += rng.normal(0, 0.04, image.shape)
    return np.clip(image, 0, 1).astype(np.float32), label


def shapes(n: int, size: tuple[int, int] = (96, 128), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images ``(n, H, W, 3)`` float32 and their labels ``(n, H, W)`` uint8, from ``seed``."""
    rng = np.random.default_rng(seed)
    pairs = [_one(rng, *size) for _ in range(n)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def iou(prediction: np.ndarray, label: np.ndarray, n_classes: int = len(CLASSES)) -> np.ndarray:
    """Intersection over union per class over all pixels (NaN for a class absent from both)."""
    prediction, label = np.asarray(prediction).ravel(), np.asarray(label).ravel()
    out = np.full(n_classes, np.nan)
    for c in range(n_classes):
        p, t = prediction == c, label == c
        union = np.count_nonzero(p | t)
        if union:
            out[c] = np.count_nonzero(p & t) / union
    return out


def mean_iou(prediction: np.ndarray, label: np.ndarray, n_classes: int = len(CLASSES)) -> float:
    """Mean of :func:`iou` over the classes present."""
    return float(np.nanmean(iou(prediction, label, n_classes)))
