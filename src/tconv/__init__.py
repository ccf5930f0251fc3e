"""tconv: convolution and transposed convolution, exact, explained and fast.

Neutral core (NumPy only)
    conv, conv_transpose        channels-last data, ``(*kernel, in/groups, out)`` kernels
    Geometry, AxisGeometry      the plan: per-axis sizes, pads and crops (tconv.geometry)
    TconvError                  the one exception type (a ValueError)

Dialects (each framework's own arguments and layouts)
    tconv.dialects.torch  .tf  .keras  .jax  .onnx

Views
    parse, explain              text spec -> LayerSpec -> Explanation
    translate                   the exact equivalent in another framework (tconv.translation)
    weights                     kernel/bias layout conversion between frameworks (tconv.weights)

Limits
    set_memory_budget           bytes a computation may allocate (tconv.budget; env TCONV_MEMORY_BUDGET)
"""

from tconv.errors import TconvError
from tconv.geometry import AxisGeometry, Geometry
from tconv.ops import conv, conv_transpose

__all__ = ["AxisGeometry", "Geometry", "TconvError", "conv", "conv_transpose"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # views load lazily so that ``import tconv`` stays NumPy-only and quick
    lazy = {"parse": "tconv.spec", "LayerSpec": "tconv.spec", "explain": "tconv.explain", "draw": "tconv.draw",
            "translate": "tconv.translation", "Translation": "tconv.translation",
            "set_memory_budget": "tconv.budget"}
    if name == "weights":
        import importlib

        return importlib.import_module("tconv.weights")
    if name in lazy:
        import importlib

        return getattr(importlib.import_module(lazy[name]), name)
    raise AttributeError(f"module 'tconv' has no attribute {name!r}")
