"""A per-thread scratch buffer for the kernels' temporaries, kept between calls.

Why: a kernel's temporary (a tile of gathered or product columns, up to 16 MiB) freed at
the end of each call goes back to the operating system whenever glibc trims its heap, and
the next call maps it again. With BLAS's threads running on the other cores, each unmap
costs a TLB shootdown across them: measured here, a forward 96x128x3->32 convolution took
1.55 ms with a fresh column tile per call and 0.66 ms with one kept (single-threaded BLAS:
no difference), and the transposed layers 0-15% (``MALLOC_TRIM_THRESHOLD_`` gave the same
gain, which a library must not set for its users). The frameworks keep such buffers too
(oneDNN's scratchpad, onnxruntime's arena).

The rules that keep it safe:

* one :func:`scratch` array in use at a time per thread and slot, only in leaf kernels (a
  product, a compiled loop) that call nothing else that takes one; the kernels take slots
  0-2, and :func:`tconv.ops.run` alone takes :data:`MOVED_INPUT` and :data:`MOVED_OUTPUT`
  around them (channels-first data moved channels-last for them, and their output before
  it is moved back; never handed to the caller);
* each thread has its own buffer (:class:`threading.local`), so tiles or calls on other
  threads never share it;
* it grows to the largest temporary asked for and stays; :func:`release` drops every
  thread's (the benchmark does before measuring a call's peak memory, so the buffers are
  counted, the tile threads' of :mod:`tconv.kernels.threads` among them).
"""

from __future__ import annotations

import math
import threading
import weakref

import numpy as np

#: the slots of :func:`tconv.ops.run`'s channels-last copies of channels-first data: the
#: input moved for the kernels and the output they write, before it is moved back
MOVED_INPUT, MOVED_OUTPUT = 4, 5

_LOCAL = threading.local()
_EVERY = weakref.WeakSet()  # every thread's buffers, for release()


class _Buffers(dict):
    """One thread's buffers by slot (a dict that a weak set can hold)."""

    __slots__ = ("__weakref__",)
    __hash__ = object.__hash__  # by identity, for the weak set


def scratch(shape: tuple[int, ...], dtype, slot: int = 0) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` and ``dtype``, a view of this
    thread's buffer number ``slot`` (grown where it is too small). Valid until the next
    call with the same slot on this thread: a kernel that holds two at once (an operand and
    a product) takes two slots."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    buffers = _buffers()
    buffer = buffers.get(slot)
    if buffer is None or buffer.nbytes < nbytes:
        buffer = None  # the old buffer is freed before the larger one is made: no name holds it
        buffers.pop(slot, None)
        buffer = buffers[slot] = np.empty(max(1, -(-nbytes // 64)), dtype=np.dtype((np.void, 64)))
    return buffer.view(np.uint8)[:nbytes].view(dtype).reshape(shape)


def _buffers() -> dict:
    buffers = getattr(_LOCAL, "buffers", None)
    if buffers is None:
        buffers = _LOCAL.buffers = _Buffers()
        _EVERY.add(buffers)
    return buffers


def held() -> int:
    """Bytes this thread's buffers hold."""
    return sum(b.nbytes for b in _buffers().values())


def release() -> None:
    """Drop every thread's buffers (the next :func:`scratch` allocates afresh). Call it
    while no kernel runs: a buffer in use stays alive, but is no longer counted."""
    for buffers in list(_EVERY):
        buffers.clear()
