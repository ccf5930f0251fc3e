"""Compute on the neutral geometry: channels-last data, ``(*kernel, in/groups, out)`` kernels.

``reference`` is small and obviously correct (loops over pixels; the test oracle);
``gemm`` is the vectorised path the library runs. Both take a :class:`~tconv.geometry.Geometry`
and never see a framework's argument names.
"""

from tconv.kernels import gemm, reference

__all__ = ["gemm", "reference"]
