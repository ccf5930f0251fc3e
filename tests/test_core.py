"""The neutral core: geometry, kernels and their identities (no framework needed)."""

from __future__ import annotations

import contextlib
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tconv
from tconv import budget, layout, ops
from tconv.errors import TconvError
from tconv.geometry import AxisGeometry, Geometry, same_pads, tf_transpose_crops
from tconv.kernels import blas, compiled, gemm, threads, workspace

from strategies import arrays_for, geometries

SETTINGS = settings(max_examples=300, deadline=None)


@SETTINGS
@given(geometries(), st.integers(0, 2**32 - 1))
def test_adjoint_identity(geometry, seed):
    """<conv(x), y> == <x, conv_transpose(y)> for every geometry, negative pads and crops included."""
    forward = Geometry(geometry.axes, geometry.in_channels, geometry.out_channels, geometry.groups)
    x, w, _ = arrays_for(forward, seed)
    y, _, _ = arrays_for(forward.flip(), seed + 1)
    lhs = np.vdot(ops.run(forward, x, w), y)
    rhs = np.vdot(x, ops.run(forward.flip(), y, w))
    assert np.isclose(lhs, rhs, rtol=1e-10, atol=1e-10), (forward, lhs, rhs)


@SETTINGS
@given(geometries(), st.integers(0, 2**32 - 1), st.sampled_from([np.float32, np.float64]))
def test_gemm_matches_reference(geometry, seed, dtype):
    """The vectorised path equals the loop definition, in both directions, dtype preserved."""
    x, w, b = arrays_for(geometry, seed, dtype)
    fast = ops.run(geometry, x, w, b, impl="gemm")
    slow = ops.run(geometry, x, w, b, impl="reference")
    assert fast.dtype == slow.dtype == dtype
    assert fast.shape == (x.shape[0],) + geometry.output_spatial + (geometry.output_channels,)
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(fast, slow, rtol=tol, atol=tol, err_msg=repr(geometry))


@SETTINGS
@given(geometries(), st.integers(0, 2**32 - 1))
def test_transposed_is_full_scatter_then_crop(geometry, seed):
    """Every crop pair is a window of the one full scatter (zero outside it)."""
    g = geometry if geometry.transposed else geometry.flip()
    full_axes = tuple(AxisGeometry.transposed(a.out, a.kernel, a.stride, a.dilation, 0, 0) for a in g.axes)
    full_geometry = Geometry(full_axes, g.in_channels, g.out_channels, g.groups, transposed=True)
    y, w, _ = arrays_for(g, seed)
    full = ops.run(full_geometry, y, w)
    out = ops.run(g, y, w)
    expected = np.zeros_like(out)
    dst, src = [slice(None)], [slice(None)]
    for a in g.axes:
        lo, hi = max(0, -a.crop_lo), min(a.size, a.full - a.crop_lo)
        dst.append(slice(lo, hi))
        src.append(slice(lo + a.crop_lo, hi + a.crop_lo))
    expected[tuple(dst)] = full[tuple(src)]
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@given(st.integers(1, 40), st.integers(1, 7), st.integers(1, 5), st.integers(1, 3))
def test_same_padding_keeps_ceil(size, kernel, stride, dilation):
    lo, hi = same_pads(size, kernel, stride, dilation)
    assert 0 <= hi - lo <= 1
    assert AxisGeometry(size, kernel, stride, dilation, lo, hi).out == -(-size // stride)


def test_seed_case_geometry():
    """Keras Conv2DTranspose(512, 3, strides=2, padding='same') on 8x8: full 17, crop (0, 1)."""
    crop = tf_transpose_crops(8, 3, 2, 1, 16, "SAME")
    axis = AxisGeometry.transposed(8, 3, 2, 1, *crop)
    assert (axis.full, axis.crop_lo, axis.crop_hi, axis.size) == (17, 0, 1, 16)
    # the "pad by 1 each side" reading is PyTorch's padding=1, output_padding=1: crop (1, 0)
    torch_axis = AxisGeometry.transposed(8, 3, 2, 1, 1, 0)
    assert torch_axis.size == 16 and torch_axis.crop_lo == 1


def test_seed_case_values_shift_by_one_pixel():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((1, 8, 8, 4))
    w = rng.standard_normal((3, 3, 2, 4))
    keras_like = tconv.conv_transpose(y, w, stride=2, crop="same")
    torch_like = tconv.conv_transpose(y, w, stride=2, crop=((1, 0), (1, 0)))
    full = tconv.conv_transpose(y, w, stride=2)
    assert keras_like.shape == torch_like.shape == (1, 16, 16, 2) and full.shape == (1, 17, 17, 2)
    np.testing.assert_allclose(keras_like, full[:, :16, :16])
    np.testing.assert_allclose(torch_like, full[:, 1:, 1:])
    assert not np.allclose(keras_like, torch_like)


def test_channels_first_equals_channels_last():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 6, 4)).astype(np.float32)
    w = rng.standard_normal((3, 2, 2, 6)).astype(np.float32)
    last = tconv.conv(x, w, stride=(2, 1), padding="same", groups=2)
    first = tconv.conv(np.moveaxis(x, -1, 1), w, stride=(2, 1), padding="same", groups=2,
                       data_format="channels_first")
    assert first.dtype == np.float32
    np.testing.assert_allclose(np.moveaxis(first, 1, -1), last, rtol=1e-6)


@pytest.mark.parametrize("case", [
    (lambda: ops.plan_conv_transpose((6, 8), (3, 3), 16, 8, stride=2, crop="same"), (2, 6, 8, 16)),  # col
    (lambda: ops.plan_conv_transpose((9, 7), (3, 3), 12, 5, crop="same"), (2, 9, 7, 12)),  # accumulate
    (lambda: ops.plan_conv((10, 12), (3, 3), 8, 6, padding="same"), (3, 10, 12, 8)),  # accumulate
    (lambda: ops.plan_conv((11,), (4,), 6, 5, stride=2), (2, 11, 6)),  # 1-D
    (lambda: ops.plan_conv_transpose((3, 4, 5), (2, 3, 2), 9, 4, stride=(1, 2, 3)), (1, 3, 4, 5, 9)),  # 3-D
    (lambda: ops.plan_conv((6, 6), (3, 3), 8, 12, groups=4), (2, 6, 6, 8)),  # grouped
    (lambda: ops.plan_conv((64, 96), (3, 3), 8, 8, groups=4), (2, 64, 96, 8)),  # grouped, few temporaries
])
def test_channels_first_data_runs_channels_last_and_moves_back(case):
    """Channels-first data is moved channels-last for the kernels and the result moved back
    (transposed layers on col read it in place and move their output back tile by tile):
    the same kernels on the same values, so the result equals the channels-last call's bit for
    bit where the data is moved (to float32 rounding where BLAS reads it transposed); and the
    call's traced peak stays within what the budget counts for it (the output, the kernels'
    temporaries, the moved input and the channels-last output). Where the moved
    copies outweigh Python's bookkeeping, the peak exceeds what the budget would count
    without them (the count of them is needed)."""
    import tracemalloc

    plan, shape = case
    g = plan()
    x, w, b = arrays_for(g, 5, np.float32, batch=shape[0])
    first = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    got = ops.run(g, first, w, b, data_format="channels_first")
    want = np.moveaxis(ops.run(g, x, w, b), -1, 1)
    if gemm.reads_channels_first(g, gemm.prepare(g, shape[0], gemm.settings()), w, shape[0]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    else:
        np.testing.assert_array_equal(got, want)
    workspace.release()
    tracemalloc.start()
    ops.run(g, first, w, b, data_format="channels_first")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    counted = ops._check_budget(g, first, w, np.dtype(np.float32), None, moved=True)
    assert peak <= counted + 131072, (peak, counted)
    if (first.size + got.size) * 4 > 4 * 131072:
        assert peak > ops._check_budget(g, first, w, np.dtype(np.float32), None) + 131072, (peak, counted)


@pytest.mark.parametrize("shape", [(6, 5, 3, 3), (33, 17, 4), (5, 4, 2, 3, 2), (3, 4, 2, 0), (0, 4, 3)])
@pytest.mark.parametrize("shared", [False, True])
def test_a_dialects_moved_kernel_is_copied_to_the_neutral_layout(shape, shared):
    """ops.contiguous_kernel: a kernel in PyTorch's or ONNX's layout, its two leading axes
    moved last (a view), copied C-contiguous by the compiled loop (one share, or a share of
    its rows per core); other layouts (and byte-swapped ones) by NumPy; a C-contiguous
    kernel returned as it is. The values never change."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal(shape).astype(np.float32)
    moved = np.moveaxis(w, (0, 1), (-1, -2))
    with _replaced(ops, "KERNEL_COPY_SHARED_ELEMENTS", 1 if shared else 1 << 62):
        for kernel in (moved, np.moveaxis(w, 0, -1), moved.astype(moved.dtype.newbyteorder()),
                       moved.astype(np.float64), moved.astype(np.float16)):  # float16: NumPy's (Numba has none)
            got = ops.contiguous_kernel(kernel)
            assert got.flags.c_contiguous and got.dtype == kernel.dtype
            np.testing.assert_array_equal(got, kernel)
    same = np.ascontiguousarray(moved)
    assert ops.contiguous_kernel(same) is same


@pytest.mark.parametrize("op", ["conv", "conv_transpose"])
@pytest.mark.parametrize("channels, stride", [(4, 1), (8, 1), (8, 2), (64, 1), (64, 2)])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_float16_and_longdouble_take_a_path_that_has_them(op, channels, stride, data_format):
    """BLAS and the compiled loops have float32 and float64 only: float16 (from 8 channels,
    every fast path) and long double raised Numba's NotImplementedError (found in the
    thirteenth session). float16 is computed in float32 and rounded once: exactly the float32
    call's result, rounded; long double runs the reference loops in its own precision:
    exactly their result. Both keep their dtype."""
    rng = np.random.default_rng(channels + stride)
    shape = (2, channels, 9, 9) if data_format == "channels_first" else (2, 9, 9, channels)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((3, 3, channels, channels))
    b = rng.standard_normal(channels)
    g = getattr(ops, f"plan_{op}")((9, 9), (3, 3), channels, channels, stride=stride)

    def call(dtype, impl="gemm"):
        return ops.run(g, *(a.astype(dtype) for a in (x, w, b)), data_format=data_format, impl=impl)

    half = call(np.float16)
    assert half.dtype == np.float16
    x, w, b = (a.astype(np.float16) for a in (x, w, b))
    assert half.tobytes() == call(np.float32).astype(np.float16).tobytes()
    long = call(np.longdouble)
    assert long.dtype == np.longdouble
    assert long.tobytes() == call(np.longdouble, "reference").tobytes()


def test_float16_in_pytorchs_layouts_and_in_the_transposed_backward():
    """float16 data and kernels in PyTorch's layouts (channels-first, the kernel's axes moved:
    the compiled kernel copy has no float16 either) run, float16 out, as the float32 call
    rounded; the transposed convolution's backward too (its compiled gather has no float16:
    it takes the general path)."""
    from tconv.dialects import torch as torch_dialect
    from tconv.grad import conv_transpose_vjp

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 16, 5, 6)).astype(np.float16)
    for fn, w in ((torch_dialect.conv_transpose2d, rng.standard_normal((16, 8, 3, 3)).astype(np.float16)),
                  (torch_dialect.conv2d, rng.standard_normal((8, 16, 3, 3)).astype(np.float16))):
        got = fn(x, w, stride=2, padding=1)
        assert got.dtype == np.float16
        want = fn(x.astype(np.float32), w.astype(np.float32), stride=2, padding=1)
        assert got.tobytes() == want.astype(np.float16).tobytes()
    x = rng.standard_normal((2, 5, 6, 16)).astype(np.float16)
    w = rng.standard_normal((3, 3, 16, 16)).astype(np.float16)
    dy = rng.standard_normal((2, 10, 12, 16)).astype(np.float16)
    got = conv_transpose_vjp(x, w, dy, stride=2, crop="same")
    want = conv_transpose_vjp(*(a.astype(np.float64) for a in (x, w, dy)), stride=2, crop="same")
    for g, r in zip(got, want):
        assert g.dtype == np.float16
        np.testing.assert_allclose(g, r, rtol=1e-2, atol=5e-3 * np.abs(r).max())


@pytest.mark.parametrize("shape", [(2, 5, 7), (1, 3, 4, 5), (2, 17, 3, 4, 5), (0, 4, 3, 3), (3, 1, 33)])
@pytest.mark.parametrize("way", ["blas", "blas shared", "compiled"])
def test_moved_channels_copies_channels_to_the_last_axis_and_back(shape, way):
    """ops.moved_channels: a C-contiguous copy with the channels moved, by OpenBLAS's
    transpose (per item, or a share of items or cells per idle core: asserted taken),
    compiled (blocked transpose) or NumPy's, for any rank, empty batches, float16 (not
    BLAS's), non-contiguous and byte-swapped input (which take NumPy's copy); the same bits."""
    rng = np.random.default_rng(0)
    shared = way == "blas shared" and threads.available()
    blas.transpose_available()  # its check of itself on first use, before its calls are counted
    with _replaced(blas, "ENABLED", way != "compiled"), _counted(blas, "transpose") as calls, \
            _replaced(ops, "MOVE_SHARED_ELEMENTS", 1 if way == "blas shared" else 1 << 62), \
            _replaced(threads, "idle", lambda helpers: True):
        for dtype in (np.float32, np.float64, np.float16):
            a = rng.standard_normal(shape).astype(dtype)
            a.flat[::3] = -0.0
            calls.clear()
            last = ops.moved_channels(a, last=True)
            assert last.flags.c_contiguous
            assert last.tobytes() == np.ascontiguousarray(np.moveaxis(a, 1, -1)).tobytes()
            assert bool(calls) == (way != "compiled" and dtype != np.float16 and a.size > 0), calls
            if calls:  # one transpose per item, or per share of one where the cores are shared
                assert len(calls) == max(shape[0], threads.workers() if shared else 1), calls
            assert ops.moved_channels(last, last=False).tobytes() == a.tobytes()
            if calls:  # the cores busy (OpenBLAS's worker spinning): one transpose per item
                calls.clear()
                with _replaced(threads, "idle", lambda helpers: False):
                    assert ops.moved_channels(a, last=True).tobytes() == last.tobytes()
                assert len(calls) == shape[0], calls
            strided = np.repeat(a, 2, axis=-1)[..., ::2]
            np.testing.assert_array_equal(ops.moved_channels(strided, last=True), np.moveaxis(a, 1, -1))
            swapped = a.astype(a.dtype.newbyteorder())
            np.testing.assert_array_equal(ops.moved_channels(swapped, last=True), np.moveaxis(a, 1, -1))
            for source in (a, strided):  # into a given array: that one, filled
                into = np.full(last.shape, np.nan, dtype)
                assert ops.moved_channels(source, last=True, out=into) is into
                assert into.tobytes() == last.tobytes()


#: transposed layers on col (C-contiguous, as it lies), batch, gemm settings: every tiling col
#: has, and col as it lies in tiles of items and channels
_IN_PLACE_CASES = {
    "kernel-row tiles, batch 1": (lambda: ops.plan_conv_transpose((12, 16), (3, 3), 64, 32, stride=2,
                                                                  crop="same"), 1, dict(COL_TILE_PER_OUTPUT=0.8, COL_MIN_TILE=1)),
    "whole items": (lambda: ops.plan_conv_transpose((6, 8), (3, 3), 16, 8, stride=2, crop="same"), 4, {}),
    "output-row blocks": (lambda: ops.plan_conv_transpose((20, 9), (4, 3), 8, 8, stride=(2, 1), crop="same"), 2,
                          dict(COL_TILE_PER_OUTPUT=0.05, COL_MIN_TILE=1, COL_FEW_CELLS=0)),
    "side by side": (lambda: ops.plan_conv_transpose((10, 12), (3, 3), 16, 8, stride=2, crop="same"), 3,
                     dict(SIDE_BY_SIDE=True, SIDE_BY_SIDE_IF_IDLE=False, COL_THREADS_MIN_COLUMNS=0,
                          COL_THREADS_TILE=1, COL_THREADS_MIN_ROWS=1, COL_MIN_TILE=1)),
    "few cells, transposed product": (lambda: ops.plan_conv_transpose((3, 4), (3, 3), 32, 16, stride=2), 2, {}),
    "grouped": (lambda: ops.plan_conv_transpose((6, 7), (3, 3), 32, 16, stride=2, groups=2, crop="same"), 2, {}),
    "1-D": (lambda: ops.plan_conv_transpose((40,), (4,), 16, 8, stride=2, crop="same"), 3, {}),
    "3-D": (lambda: ops.plan_conv_transpose((4, 5, 6), (3, 3, 3), 16, 8, stride=2, dilation=(1, 2, 1)), 2,
            dict(COL_FEW_CELLS=0)),
    "as it lies": (lambda: ops.plan_conv_transpose((6, 8), (3, 3), 32, 24, stride=2, crop="same", groups=2), 3,
                   dict(COL_LIES_MIN_KERNEL=0, COL_TILE_PER_OUTPUT=0.2, COL_MIN_TILE=1)),
    # accumulate: forward of unit strides, and transposed ones as the forward they mirror
    "accumulate, whole items": (lambda: ops.plan_conv((7, 9), (3, 3), 8, 6, padding="same"), 3, {}),
    "accumulate, blocks of rows": (lambda: ops.plan_conv((9, 10), (3, 3), 8, 6, padding="same", dilation=(2, 1)),
                                   2, dict(ACCUMULATE_BLOCK_ELEMENTS=40)),
    "accumulate, rows no tap reaches": (lambda: ops.plan_conv((5, 6), (3, 3), 4, 5, padding=((4, 4), (1, 1))), 2,
                                        dict(ACCUMULATE_BLOCK_ELEMENTS=30)),
    "accumulate, grouped": (lambda: ops.plan_conv((6, 7), (3, 3), 16, 8, padding="same", groups=2), 2, {}),
    "accumulate, 1-D": (lambda: ops.plan_conv((30,), (5,), 8, 4, padding="same"), 3, {}),
    "accumulate, 3-D": (lambda: ops.plan_conv((4, 5, 6), (3, 3, 3), 8, 4, padding="same"), 2,
                        dict(ACCUMULATE_BLOCK_ELEMENTS=100)),
    "accumulate, transposed": (lambda: ops.plan_conv_transpose((7, 8), (3, 3), 8, 6, crop="same"), 2, {}),
    "accumulate, transposed, extended": (lambda: ops.plan_conv_transpose((7, 8), (3, 3), 8, 6), 2, {}),
}


@pytest.mark.parametrize("case", sorted(_IN_PLACE_CASES))
def test_col_and_accumulate_read_channels_first_data_in_place(case):
    """A transposed layer on col, or a layer on accumulate, reads channels-first data in
    place (BLAS reads each item's ``(C, cells)`` transposed; here on items of any size) and
    each tile or block moves the output rows it finishes into the channels-first result:
    nothing is moved around the call (ops.moved_channels not called, gemm._moved_rows
    asserted called once for each tile or block that finishes rows), every tiling alike,
    and the values are the reference's and the channels-last call's."""
    accumulate = case.startswith("accumulate")
    if not (compiled.available() and blas.transpose_available()) or (accumulate and not blas.available()):
        pytest.skip("Numba, OpenBLAS's transpose or its GEMM missing: data moved around the call")
    plan, batch, settings = _IN_PLACE_CASES[case]
    if accumulate:
        settings = dict(settings, MODE="accumulate")
    g = plan()
    x, w, b = arrays_for(g, 7, np.float64, batch=batch)
    if case == "as it lies":
        w = np.moveaxis(np.ascontiguousarray(np.moveaxis(w, (-1, -2), (0, 1))), (0, 1), (-1, -2))
    first = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    with _gemm_settings(FIRST_MIN_CELLS=1, **settings), _counted(ops, "moved_channels") as moves, \
            _counted(gemm, "_moved_rows") as finished:
        prepared = gemm.prepare(g, batch, gemm.settings(), lies=case == "as it lies")
        assert (prepared.lies is not None) == (case == "as it lies") and gemm.reads_channels_first(g, prepared, w, batch)
        assert (prepared.mode == "accumulate") == accumulate
        got = ops.run(g, first, w, b, data_format="channels_first")
        last = ops.run(g, x, w, b)
        if accumulate:
            run = gemm._accumulate_geometry(g)
            steps = gemm._accumulate_plan(run, batch, gemm.ACCUMULATE_BLOCK_ELEMENTS, True)
            blocks = [done for *_, done in steps if done is not None]
    assert not moves, moves
    if accumulate:  # one move for each block, every output row in one block, each item apart
        tiles, finishing = blocks, len(blocks)
        assert sorted((n, r) for n0, n1, r0, r1 in blocks for n in range(n0, n1) for r in range(r0, r1)) == \
            [(n, r) for n in range(batch) for r in range(g.output_spatial[0])]
        assert all(n1 == n0 + 1 for n0, n1, _, _ in blocks)
        if "blocks" in case or "reaches" in case:
            assert len(blocks) > batch, blocks
        if "extended" in case:  # read from a channels-first copy extended by zeros
            assert gemm._accumulate_geometry(g).input_spatial != g.input_spatial
        if "reaches" in case:  # rows that read only padding: a block with no product, moved all the same
            assert any(t < 0 and done is not None for _, t, *_, done in steps), steps
    elif prepared.lies is not None:  # each tile, of each group, finishes its channels of its items
        tiles, finishing = prepared.lies, len(prepared.lies) * g.groups
    else:  # the tiles that reach a block of rows with its last kernel row finish it
        tiles = [t for t, _ in prepared.col[1 if case == "side by side" else 2]]
        finishing = sum(t[5] == g.kernel_shape[0] for t in tiles)
    assert len(finished) == finishing >= 1, (len(finished), finishing)
    if case in ("kernel-row tiles, batch 1", "output-row blocks", "side by side", "as it lies"):
        assert len(tiles) > 1, tiles
    want = ops.run(g, first, w, b, impl="reference", data_format="channels_first")
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, np.moveaxis(last, -1, 1), rtol=1e-13, atol=1e-13)


def test_channels_first_data_is_moved_where_it_cannot_be_read_in_place():
    """Channels-first data that is not C-contiguous, a batch of items of fewer than
    gemm.FIRST_MIN_CELLS cells, or a call whose path is neither col nor accumulate (or
    accumulate into a frame: a 'valid' forward convolution), is moved channels-last
    and back as before (same values); gemm refuses ``first`` on a path that does not take
    it, with a TconvError naming it, before writing anything."""
    g = ops.plan_conv_transpose((6, 8), (3, 3), 16, 8, stride=2, crop="same")
    x, w, b = arrays_for(g, 2, np.float64, batch=2)
    strided = np.moveaxis(x, -1, 1)  # a view, not C-contiguous
    want = ops.run(g, strided, w, b, impl="reference", data_format="channels_first")
    for data, least in ((strided, 1), (np.ascontiguousarray(strided), 49), (np.ascontiguousarray(strided[:1]), 49)):
        with _gemm_settings(FIRST_MIN_CELLS=least), _counted(ops, "moved_channels") as moves:
            np.testing.assert_allclose(ops.run(g, data, w, b, data_format="channels_first"), want[:len(data)],
                                       rtol=1e-12, atol=1e-12)
        assert len(moves) == (0 if len(data) == 1 else 2), (least, len(data))  # one item: in place
    with _gemm_settings(MODE="concat"):
        prepared = gemm.prepare(g, 2, gemm.settings())
        assert not gemm.reads_channels_first(g, prepared, w, 2)
        out = np.zeros((2,) + g.output_spatial + (8,))
        first = np.zeros((2, 8) + g.output_spatial)
        with pytest.raises(TconvError, match="first="):
            gemm.conv_transpose(np.ascontiguousarray(strided), w, g, b, out, gemm.settings(), prepared, first)
        assert not out.any() and not first.any()
        with _counted(ops, "moved_channels") as moves:
            np.testing.assert_allclose(ops.run(g, strided, w, b, data_format="channels_first"), want, rtol=1e-12,
                                       atol=1e-12)
        assert len(moves) == 2
    framed = ops.plan_conv((8, 9), (3, 3), 4, 6)  # 'valid': accumulate computes into a frame
    x, w, b = arrays_for(framed, 2, np.float64, batch=1)
    data = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    with _gemm_settings(MODE="accumulate", ACCUMULATE_FRAMED_MIN_ELEMENTS=0, ACCUMULATE_FRAMED_MIN_CHANNELS=0):
        prepared = gemm.prepare(framed, 1, gemm.settings())
        assert prepared.mode == "accumulate" and not gemm.reads_channels_first(framed, prepared, w, 1)
        with _counted(ops, "moved_channels") as moves:
            np.testing.assert_allclose(ops.run(framed, data, w, b, data_format="channels_first"),
                                       ops.run(framed, data, w, b, impl="reference", data_format="channels_first"),
                                       rtol=1e-12, atol=1e-12)
        assert len(moves) == 2 or not blas.available()


def test_moved_channels_refuses_an_out_it_cannot_fill():
    """ops.moved_channels(out=...): a TconvError naming ``out`` for a wrong shape, dtype or a
    non-contiguous array, before anything is written."""
    a = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    for out in (np.zeros((1, 3, 4, 3), np.float32), np.zeros((1, 3, 4, 2), np.float64),
                np.zeros((1, 3, 4, 4), np.float32)[..., ::2]):
        before = out.copy()
        with pytest.raises(TconvError, match="out=") as caught:
            ops.moved_channels(a, last=True, out=out)
        assert "(1, 3, 4, 2)" in str(caught.value)
        np.testing.assert_array_equal(out, before)


@pytest.mark.parametrize("transposed", [False, True])
def test_channels_first_calls_move_their_copies_into_kept_buffers(transposed):
    """A channels-first call moves its input channels-last into, and computes into, this
    thread's kept buffers (workspace slots MOVED_INPUT and MOVED_OUTPUT, up to
    ops.MOVED_KEPT_MAX_BYTES; larger data into new arrays, none kept): the buffers then hold
    exactly those two copies, the same buffers again on the next call, and a result is
    never one of them (a later call leaves it as it was)."""
    plan = ops.plan_conv_transpose if transposed else ops.plan_conv
    g = plan((6, 7), (3, 3), 4, 5, **({"stride": 2, "crop": "same"} if transposed else {"padding": "same"}))
    x, w, b = arrays_for(g, 3, np.float32, batch=2)
    first = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    copies = (x.size * 4, 2 * math.prod(g.output_spatial) * g.output_channels * 4)  # input, output
    with _gemm_settings(MODE="concat"):  # a path that takes no scratch of its own
        workspace.release()
        got = ops.run(g, first, w, b, data_format="channels_first")
        assert workspace.held() == sum(-(-n // 64) * 64 for n in copies)  # buffers of whole 64-byte blocks
        kept = workspace.scratch((1,), np.float32, workspace.MOVED_INPUT).ctypes.data
        seen = got.copy()
        again = ops.run(g, first + 1, w, b, data_format="channels_first")
        assert workspace.scratch((1,), np.float32, workspace.MOVED_INPUT).ctypes.data == kept
        np.testing.assert_array_equal(got, seen)
        assert not np.array_equal(again, got)
        np.testing.assert_array_equal(got, np.moveaxis(ops.run(g, x, w, b), -1, 1))
        workspace.release()
        with _replaced(ops, "MOVED_KEPT_MAX_BYTES", x.size * 4 - 1):
            np.testing.assert_array_equal(ops.run(g, first, w, b, data_format="channels_first"), got)
        assert workspace.held() == 0
    workspace.release()


def test_blas_transpose_refuses_what_it_cannot_take():
    """blas.transpose: the transpose into any block of rows, and a named TconvError for a
    wrong shape, mixed or unsupported dtypes and rows whose elements are not adjacent."""
    if not blas.transpose_available():
        pytest.skip("OpenBLAS's transpose is not found here (threadpoolctl missing or another BLAS)")
    a = np.arange(12.0).reshape(3, 4)
    b = np.zeros((6, 3))
    blas.transpose(a, b[1:5])
    np.testing.assert_array_equal(b[1:5], a.T)
    assert not b[0].any() and not b[5].any()
    for call, argument in [(lambda: blas.transpose(a, np.zeros((3, 4))), "b"),
                           (lambda: blas.transpose(a, np.zeros((4, 3), np.float32)), "b"),
                           (lambda: blas.transpose(a.astype(np.float16), np.zeros((4, 3), np.float16)), "a"),
                           (lambda: blas.transpose(a[:, ::2], np.zeros((2, 3))), "a")]:
        with pytest.raises(TconvError) as info:
            call()
        assert info.value.argument == argument


@pytest.mark.parametrize("call, argument", [
    (lambda: tconv.conv(np.ones((1, 5, 2)), np.ones((3, 2, 4)), stride=0), "stride"),
    (lambda: tconv.conv(np.ones((1, 5, 3)), np.ones((3, 2, 4))), "input"),
    (lambda: tconv.conv(np.ones((1, 2, 2)), np.ones((3, 2, 4))), "kernel"),
    (lambda: tconv.conv(np.ones((1, 5, 2)), np.ones((3, 2, 4)), padding=[1, 2, 3]), "padding"),
    (lambda: tconv.conv(np.ones((1, 5, 2)), np.ones((3, 2, 4)), groups=3), "input"),
    (lambda: tconv.conv(np.ones((1, 5, 2)), np.ones((3, 2, 4)), bias=np.ones(3)), "bias"),
    (lambda: tconv.conv("abc", np.ones((3, 2, 4))), "input"),
    (lambda: tconv.conv(np.ones((1, 5, 2), dtype=complex), np.ones((3, 2, 4))), "input"),
    (lambda: tconv.conv_transpose(np.ones((1, 2, 4)), np.ones((3, 2, 4)), crop=((3, 3),)), "output"),
    (lambda: tconv.conv_transpose(np.ones((1, 2, 4)), np.ones((3, 2, 4)), dilation=-1), "dilation"),
    (lambda: tconv.conv_transpose(np.ones((1, 2, 4)), np.ones((3, 2, 4)), crop="full"), "crop"),
])
def test_bad_input_is_a_named_valueerror(call, argument):
    with pytest.raises(TconvError) as info:
        call()
    assert isinstance(info.value, ValueError)
    assert info.value.argument == argument
    assert str(info.value).startswith(f"{argument}=") or f"{argument}=" in str(info.value)


def test_integer_input_computes_in_float64_and_float32_is_preserved():
    x = np.arange(6).reshape(1, 6, 1)
    w = np.ones((2, 1, 1), dtype=np.int32)
    assert tconv.conv(x, w).dtype == np.float64
    assert tconv.conv(x.astype(np.float32), w.astype(np.float32)).dtype == np.float32


def test_empty_batch():
    out = tconv.conv_transpose(np.zeros((0, 3, 2)), np.ones((3, 1, 2)), stride=2)
    assert out.shape == (0, 7, 1)


def test_import_loads_no_framework():
    code = ("import sys, tconv, tconv.dialects.torch, tconv.ops; "
            "bad = [m for m in ('torch', 'tensorflow', 'jax', 'keras', 'onnxruntime', 'onnx') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@contextlib.contextmanager
def _gemm_settings(**values):
    """gemm's module settings (MODE, tile sizes) set for the block, restored after it."""
    old = {name: getattr(gemm, name) for name in values}
    for name, value in values.items():
        setattr(gemm, name, value)
    try:
        yield
    finally:
        for name, value in old.items():
            setattr(gemm, name, value)


@contextlib.contextmanager
def _counted(module, name):
    """``module.name`` wrapped for the block so that its calls are noted: yields the list of
    their arguments (a path asserted taken)."""
    calls = []
    real = getattr(module, name)
    with _replaced(module, name, lambda *a, **k: calls.append(a) or real(*a, **k)):
        yield calls


@contextlib.contextmanager
def _replaced(module, name, value):
    """``module.name`` replaced by ``value`` for the block."""
    real = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, real)


def _check_forced_path(geometry, mode, data_format="channels_last", seed=0, x=None, **settings):
    """``geometry`` run on ``mode`` (asserted taken) with gemm ``settings``, against the
    reference loops, with a bias, in ``data_format``."""
    rng = np.random.default_rng(seed)
    if x is None:
        x = rng.standard_normal((3,) + geometry.input_spatial + (geometry.input_channels,))
    if data_format == "channels_first":
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    w = rng.standard_normal(geometry.neutral_kernel_shape)
    b = rng.standard_normal(geometry.output_channels)
    with _gemm_settings(MODE=mode, **settings):
        assert gemm._mode(geometry) == mode
        fast = ops.run(geometry, x, w, b, impl="gemm", data_format=data_format)
    want = ops.run(geometry, x, w, b, impl="reference", data_format=data_format)
    np.testing.assert_allclose(fast, want, rtol=1e-12, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(geometries(), st.integers(0, 2**32 - 1),
       st.sampled_from([None, "concat", "per_tap", "flat", "col", "im2col", "rows", "shift", "grouped",
                        "accumulate"]),
       st.sampled_from([1, 7, 1 << 18]), st.sampled_from(["channels_last", "channels_first"]), st.booleans(),
       st.sampled_from([0, 1 << 62]), st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_tiled_gemm_matches_reference(geometry, seed, mode, tile, data_format, side_by_side, few_cells, lies,
                                      permuted, depthwise_rows, strided):
    """Every product shape (concat, per tap, flat, rows, shift, compiled col, im2col and grouped), tiny
    tiles (one row of one item; for col, one kernel row or a block of output rows), col's, rows',
    shift's, im2col's and grouped's tiles side by side on every core, col's two col2im (``few_cells`` 0:
    every tile's columns C-contiguous; else every tile's the transposed product, strided),
    writing channels-first in place, a kernel in PyTorch's layout (``lies``: multiplied as
    it lies, every kernel counting as large; transposed in blocks of items and channels,
    forward gathered in (channel, tap) order in tiles of rows) and the grouped
    loop on the input permuted groups innermost (``permuted``: every grouped layer) or row by
    row (``depthwise_rows``: forward depthwise layers on 2-D data) and data whose channels are
    strided (``strided``: im2col's and rows' gathers then copy per (cell, tap) pair, or by
    NumPy, not by runs) change nothing."""
    x, w, b = arrays_for(geometry, seed, batch=3)
    if lies:  # (C_in, C_out/groups, *k) (forward: (C_out, C_in/groups, *k)) as the neutral view
        w = np.moveaxis(np.ascontiguousarray(np.moveaxis(w, (-1, -2), (0, 1))), (0, 1), (-1, -2))
    if data_format == "channels_first":
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    elif strided:  # the same values, every other element of a wider array
        x = np.repeat(x, 2, axis=-1)[..., ::2]
    threaded = dict(SIDE_BY_SIDE=True, SIDE_BY_SIDE_IF_IDLE=False, COL_THREADS_MIN_COLUMNS=0,
                    COL_THREADS_MAX_KERNEL=1 << 62, COL_THREADS_TILE=tile, COL_THREADS_MIN_ROWS=1,
                    ROWS_THREADS_MAX_KERNEL=1 << 62, ROWS_THREADS_MIN_OUTPUT=0,
                    SHIFT_THREADS_MAX_KERNEL=1 << 62, SHIFT_THREADS_MIN_OUTPUT=0,
                    IM2COL_THREADS_MAX_KERNEL=1 << 62, IM2COL_THREADS_MIN_OUTPUT=0, GROUPED_THREADS_MIN_OUTPUT=0) \
        if side_by_side else dict(COL_THREADS_MIN_COLUMNS=1 << 62, ROWS_THREADS_MIN_OUTPUT=1 << 62,
                                  SHIFT_THREADS_MIN_OUTPUT=1 << 62, IM2COL_THREADS_MIN_OUTPUT=1 << 62,
                                  GROUPED_THREADS_MIN_OUTPUT=1 << 62)
    with _gemm_settings(MODE=mode, TILE_ELEMENTS=tile, MIN_TILE_CELLS=1, MAX_TILE_ELEMENTS=0, COL_MIN_TILE=1,
                        COL_MAX_TILE=tile, ROWS_TILE_ELEMENTS=tile, SHIFT_TILE_ELEMENTS=tile,
                        COL_FEW_CELLS=few_cells, COL_LIES_MIN_KERNEL=0, IM2COL_LIES_MIN_RATIO=0,
                        GROUPED_PERMUTED_MIN_GROUPS=2 if permuted else 1 << 62,
                        GROUPED_PERMUTED_MAX_CHANNELS=1 << 62, DEPTHWISE_ROWS=depthwise_rows, **threaded):
        fast = ops.run(geometry, x, w, b, impl="gemm", data_format=data_format)
    want = ops.run(geometry, x, w, b, impl="reference", data_format=data_format)
    np.testing.assert_allclose(fast, want, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("case", [
    # (input, kernel, C_in, C_out, arguments, batch): the seed's layer at a quarter of its channels
    ((8, 8), (3, 3), 256, 128, dict(stride=2, crop="same"), 1),
    ((6, 8), (3, 3), 256, 128, dict(stride=2, crop="same"), 4),         # blocks of items and channels
    ((40,), (5,), 192, 160, dict(stride=3, crop=((2, 1),)), 3),          # 1-D
    ((3, 4, 5), (3, 3, 3), 96, 64, dict(stride=2, dilation=(1, 2, 1)), 2),  # 3-D
    ((5, 6), (3, 3), 128, 256, dict(stride=2, groups=2, crop="same"), 2),   # grouped
    # forward, (C_out, C_in/groups, *k): gathered in (channel, tap) order
    ((6, 8), (3, 3), 256, 256, dict(padding="same"), 1, "forward"),
    ((7, 9), (3, 3), 256, 128, dict(stride=2, dilation=2, padding=((3, 1), (0, 2))), 3, "forward"),
    ((30,), (5,), 192, 160, dict(stride=2, padding="valid"), 2, "forward"),    # 1-D
    ((3, 4, 5), (3, 3, 3), 64, 96, dict(padding="same"), 1, "forward"),         # 3-D
    ((5, 6), (3, 3), 256, 256, dict(groups=2, padding="same"), 2, "forward"),  # grouped
])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_kernel_in_pytorchs_layout_is_multiplied_as_it_lies(case, data_format, dtype):
    """A large kernel in PyTorch's (and ONNX's) layout, transposed ``(C_in, C_out/groups, *k)``
    or forward ``(C_out, C_in/groups, *k)``, handed over as the neutral layout's moved view
    (the torch and onnx dialects do), is multiplied as it lies (asserted taken): the same
    values as the C-contiguous kernel's call, and never copied: the call's traced peak stays
    within what the budget counts for it, which counts no copy of the kernel, closer than
    the kernel's bytes."""
    import tracemalloc

    if not compiled.available():
        pytest.skip("Numba is not installed (the fast extra): no col path")
    spatial, k, cin, cout, arguments, batch, *forward = case
    plan = ops.plan_conv if forward else ops.plan_conv_transpose
    g = plan(spatial, k, cin, cout, **arguments)
    assert math.prod(g.neutral_kernel_shape) >= gemm.COL_LIES_MIN_KERNEL
    x, w, b = arrays_for(g, 3, dtype, batch=batch)
    if data_format == "channels_first":
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    lying = np.moveaxis(np.ascontiguousarray(np.moveaxis(w, (-1, -2), (0, 1))), (0, 1), (-1, -2))
    assert gemm.kernel_lies(lying) and not gemm.kernel_lies(w)
    with _counted(gemm, "_im2col_lies_run" if forward else "_col_lies_run") as taken:
        got = ops.run(g, x, lying, b, data_format=data_format)
    assert taken
    want = ops.run(g, x, w, b, data_format=data_format)
    # sums of up to 2304 products, added in another order: float32 rounding of the largest
    scale = np.abs(want).max()
    tol = dict(rtol=1e-5, atol=2e-6 * scale) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13 * scale)
    np.testing.assert_allclose(got, want, **tol)
    workspace.release()
    tracemalloc.start()
    ops.run(g, x, lying, b, data_format=data_format)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    kernels = gemm.prepare(g, batch, gemm.settings(), lies=True)
    assert kernels.lies is not None
    counted = ops._check_budget(g, x, lying, np.dtype(dtype), None, data_format == "channels_first", kernels)
    assert counted < ops._check_budget(g, x, lying, np.dtype(dtype), None, data_format == "channels_first")
    assert peak <= counted + 131072, (peak, counted)
    assert peak + lying.nbytes > counted + 131072, (peak, counted)  # so a copy of the kernel would show


@pytest.mark.parametrize("groups, channels", [(32, 128), (64, 128), (32, 512), (16, 64), (128, 128)])
def test_many_groups_of_few_channels_take_the_permuted_grouped_loop(groups, channels):
    """ResNeXt-like layers (at least 32 groups of at most 16 channels, not depthwise) run the
    compiled grouped loop on the input permuted groups innermost (asserted taken), with a
    bias, channels-last and first, the same values as the reference loops; fewer groups and
    depthwise keep their paths, and the input's copy is counted in the temporaries."""
    if not compiled.available():
        pytest.skip("Numba is not installed (the fast extra): no grouped loop")
    g = ops.plan_conv((9, 10), (3, 3), channels, channels, groups=groups, padding="same")
    s = channels // groups
    permuted = groups >= 32 and s <= 16 and s > 1
    assert gemm._grouped_permuted(g) == permuted
    assert (gemm._batch_mode(g, 2) == "grouped") == (permuted or s == 1)
    with _counted(compiled, "grouped_permuted") as taken:
        for data_format in ("channels_last", "channels_first"):
            x, w, b = arrays_for(g, groups, batch=2)
            if data_format == "channels_first":
                x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
            np.testing.assert_allclose(ops.run(g, x, w, b, data_format=data_format),
                                       ops.run(g, x, w, b, data_format=data_format, impl="reference"),
                                       rtol=1e-11, atol=1e-11)
    assert bool(taken) == permuted
    if gemm._batch_mode(g, 2) == "grouped":  # the tables, the bias, the kernel's copy, the input's;
        # depthwise (by rows): a row's sums per core
        extra = 2 * 9 * 10 * channels if permuted else threads.workers() * 10 * channels if s == 1 else 0
        assert gemm.temporary_elements(g, 2) == (gemm._table_elements(g) + channels
                                                 + math.prod(g.neutral_kernel_shape) + extra)


@pytest.mark.parametrize("stride, dilation, padding", [(1, 1, "same"), (2, 1, "same"), (1, 2, "same"),
                                                       (3, 1, ((2, 0), (0, 4))), (1, 1, ((-1, 2), (3, -2)))])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_depthwise_layers_run_row_by_row(stride, dilation, padding, data_format):
    """Forward depthwise layers on 2-D data run the grouped loop row by row (asserted taken),
    strided, dilated, padded unevenly or cropped (negative padding), a row block per core or
    not, the same values as the reference loops."""
    if not compiled.available():
        pytest.skip("Numba is not installed (the fast extra): no grouped loop")
    g = ops.plan_conv((11, 13), (3, 4), 16, 16, groups=16, stride=stride, dilation=dilation, padding=padding)
    assert gemm._batch_mode(g, 2) == "grouped"
    x, w, b = arrays_for(g, stride, batch=2)
    if data_format == "channels_first":
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    want = ops.run(g, x, w, b, data_format=data_format, impl="reference")
    for shared in (0, 1 << 62):
        with _counted(compiled, "depthwise_rows") as taken, \
                _gemm_settings(GROUPED_THREADS_MIN_OUTPUT=shared, SIDE_BY_SIDE_IF_IDLE=False):
            np.testing.assert_allclose(ops.run(g, x, w, b, data_format=data_format), want, rtol=1e-11, atol=1e-11)
        assert taken


def test_grouped_layers_past_the_cut_take_im2col_and_others_accumulate():
    """A grouped 3-D 'valid' layer's taps leave 31% of a plane unreached, past the cut that
    keeps layers off accumulate: a forward one takes im2col, a gather and a product per
    group (asserted, per group); asked for a transposed layer (``mirrored``, whose other
    path would be concat) it is taken anyway; the same layer 'same' (no cut) takes
    accumulate; all the same values as the reference loops."""
    if not blas.available() or not compiled.available():
        pytest.skip("NumPy's OpenBLAS or Numba missing: no accumulate or im2col")
    valid = ops.plan_conv((12, 12, 12), (3, 3, 3), 32, 16, groups=4)
    same = ops.plan_conv((12, 12, 12), (3, 3, 3), 32, 16, groups=4, padding="same")
    assert gemm._batch_mode(valid, 2) == "im2col" and gemm._batch_mode(same, 2) == "accumulate"
    assert not gemm._accumulate_ready(valid) and gemm._accumulate_ready(valid, mirrored=True)
    for g in (valid, same):
        x, w, b = arrays_for(g, 4, batch=2)
        with _counted(compiled, "im2col") as gathers:
            np.testing.assert_allclose(ops.run(g, x, w, b), ops.run(g, x, w, b, impl="reference"),
                                       rtol=1e-11, atol=1e-11)
        assert len(gathers) == (4 * len(gemm._im2col_tiles(g, 2, False)) if g is valid else 0)
        assert {a[-3] for a in gathers} == ({0, 8, 16, 24} if g is valid else set())  # each group's channels


@pytest.mark.parametrize("spatial, kernel, channels, arguments, batch", [
    ((20, 24), (3, 3), 3, dict(padding="same"), 2),                                # the U-Net's RGB layer
    ((31, 29), (7, 7), 3, dict(stride=2, padding="same"), 1),                      # a stem
    ((17, 19), (3, 5), 3, dict(stride=(1, 2), dilation=(2, 1), padding=((3, 0), (1, 4))), 3),
    ((16, 18), (3, 3), 3, dict(padding=((-1, 2), (2, -1))), 2),                    # cropped on one side
    ((12, 14), (3, 3), 1, dict(padding="valid"), 2),                               # grey
    ((13, 15), (3, 3), 3, dict(dilation=2, padding="same"), 1),                    # runs of one tap
    ((64,), (7,), 3, dict(stride=3, padding="same"), 4),                           # 1-D
    ((40,), (5,), 16, dict(stride=2, dilation=(2,), padding="same"), 2),           # 1-D, dilated
    ((9, 8, 10), (3, 3, 3), 3, dict(stride=2, padding="same"), 1),                 # 3-D
    ((5, 6, 3), (2, 3, 3), 2, dict(padding="valid"), 2),                           # 3-D, a window as wide as a plane
    ((4, 4, 2), (3, 3, 3), 2, dict(padding="same"), 1),                            # 3-D, a plane narrower than a window
    ((14, 15), (5, 5), 16, dict(stride=2, padding="same"), 2),                     # wider: C_in 16
])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_im2col_gathers_windows_by_runs(spatial, kernel, channels, arguments, batch, data_format):
    """im2col gathers a window's taps along the last axis as runs of adjacent cells, one copy
    each (asserted taken, the per-pair gather not), in tiles of one output row or all, padded,
    cropped, strided, dilated, in 1-3 D: the same values as the reference loops, and the
    call's traced peak within what the budget counts."""
    import tracemalloc

    if not compiled.available():
        pytest.skip("Numba is not installed (the fast extra): no im2col path")
    g = ops.plan_conv(spatial, kernel, channels, 16, **arguments)
    x, w, b = arrays_for(g, len(spatial), batch=batch)
    if data_format == "channels_first":
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    want = ops.run(g, x, w, b, data_format=data_format, impl="reference")
    for tile in (1, 1 << 22):
        with _gemm_settings(MODE="im2col", COL_MIN_TILE=1, COL_MAX_TILE=tile):
            with _counted(compiled, "im2col") as runs, _counted(compiled, "im2col_strided") as pairs:
                np.testing.assert_allclose(ops.run(g, x, w, b, data_format=data_format), want,
                                           rtol=1e-11, atol=1e-11)
            assert runs and not pairs
            workspace.release()  # (the counting, which keeps every call's arguments, is over)
            tracemalloc.start()
            ops.run(g, x, w, b, data_format=data_format)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            counted = ops._check_budget(g, x, w, np.dtype(np.float64), None, data_format == "channels_first")
        assert peak <= counted + 65536, (peak, counted)


@pytest.mark.parametrize("spatial, kernel, arguments", [
    ((13, 11), (3, 3), dict(stride=2, padding="same")),
    ((30,), (5,), dict(stride=2, padding="same")),
    ((5, 6, 7), (3, 3, 3), dict(padding="same")),
])
def test_im2col_and_rows_gather_strided_channels_per_pair(spatial, kernel, arguments):
    """Data whose channels are not adjacent (every other element of a wider array) has no
    runs to copy: im2col gathers it per (cell, tap) pair on the per-axis tables and rows by
    NumPy (asserted), the same values as the reference loops."""
    if not compiled.available():
        pytest.skip("Numba is not installed (the fast extra): no im2col path")
    g = ops.plan_conv(spatial, kernel, 5, 8, **arguments)
    x, w, b = arrays_for(g, len(spatial), batch=2)
    strided = np.repeat(x, 2, axis=-1)[..., ::2]
    assert gemm._flat_cells(strided, g.rank) is None and gemm._flat_cells(x, g.rank) is not None
    want = ops.run(g, x, w, b, impl="reference")
    modes = ["im2col"] + (["rows"] if g.rank == 2 and gemm._rows_ready(g) else [])
    for mode in modes:
        with _gemm_settings(MODE=mode), _counted(compiled, "im2col") as runs, \
                _counted(compiled, "im2col_strided") as pairs:
            np.testing.assert_allclose(ops.run(g, strided, w, b), want, rtol=1e-11, atol=1e-11)
        assert not runs and bool(pairs) == (mode == "im2col"), mode


def test_runs_join_the_pairs_of_adjacent_cells_and_taps():
    """The runs im2col copies (:func:`gemm._col_runs`): a 7x7 stride-2 'same' stem's
    window is 7 runs of 7 taps inside and shorter ones at the padded edge; dilated, each
    pair is its own run; 1-D, the runs of the only axis; 3-D, where a window is as wide as
    a plane (input width = kernel width), its rows join into one run."""
    stem = ops.plan_conv((224, 224), (7, 7), 3, 64, stride=2, padding="same")  # pads 2 before, 3 after
    count, cell, tap, length = gemm._col_runs(stem)
    assert count[50] == 1 and (cell[50, 0], tap[50, 0], length[50, 0]) == (98, 0, 7)
    assert count[0] == 1 and (cell[0, 0], tap[0, 0], length[0, 0]) == (0, 2, 5)
    assert count[111] == 1 and (cell[111, 0], tap[111, 0], length[111, 0]) == (220, 0, 4)
    dilated = ops.plan_conv((20, 20), (3, 3), 3, 8, dilation=2, padding="same")
    count, cell, tap, length = gemm._col_runs(dilated)
    assert count[10] == 3 and list(length[10]) == [1, 1, 1] and list(cell[10]) == [8, 10, 12]
    one_d = ops.plan_conv((30,), (5,), 2, 8, stride=2, padding="same")
    count, cell, tap, length = gemm._col_runs(one_d)
    assert count[5] == 1 and (cell[5, 0], tap[5, 0], length[5, 0]) == (9, 0, 5)
    plane = ops.plan_conv((5, 6, 3), (2, 3, 3), 2, 4, padding="valid")
    count, cell, tap, length = gemm._col_runs(plane)  # per (o1, o2) of a 4x1 output plane
    assert list(count) == [1, 1, 1, 1] and list(length[:, 0]) == [9] * 4 and list(cell[:, 0]) == [0, 3, 6, 9]
    shifted = ops.plan_conv((5, 6, 4), (2, 3, 3), 2, 4, padding="valid")  # width 4: rows do not join
    count, cell, tap, length = gemm._col_runs(shifted)
    assert list(count) == [3] * 8 and (length == 3).all() and list(cell[1]) == [1, 5, 9]
    # width 2 under a window of 3 ('same'): output (1, 0) reads cells 0-5 of its plane, one
    # after another, through taps 1-2, 4-5 and 7-8: adjacent cells, taps apart, three runs
    narrow = ops.plan_conv((4, 4, 2), (3, 3, 3), 2, 4, padding="same")
    count, cell, tap, length = gemm._col_runs(narrow)
    assert count[2] == 3 and list(cell[2]) == [0, 2, 4] and list(tap[2]) == [1, 4, 7] and list(length[2]) == [2, 2, 2]


@pytest.mark.parametrize("transposed", [False, True])
def test_a_call_prepared_for_a_lying_kernel_handed_another_runs_the_path_it_would(transposed):
    """A call prepared for a kernel that lies in PyTorch's layout but handed a C-contiguous
    one (a caller reusing a prepared call) does not multiply it as if it lay: it runs the
    path the layer takes otherwise (asserted), the same values as the reference loops."""
    if not compiled.available():
        pytest.skip("Numba is not installed (the fast extra): no col path")
    if transposed:
        g = ops.plan_conv_transpose((6, 8), (3, 3), 256, 128, stride=2, crop="same")
    else:
        g = ops.plan_conv((6, 8), (3, 3), 256, 256, padding="same")
    prepared = gemm.prepare(g, 1, gemm.settings(), lies=True)
    assert prepared.lies is not None
    x, w, b = arrays_for(g, 7, batch=1)
    run = gemm.conv_transpose if transposed else gemm.conv
    with _counted(gemm, "_col_lies_run") as col, _counted(gemm, "_im2col_lies_run") as im2col:
        got = run(x, w, g, b, prepared=prepared)
    assert not col and not im2col
    np.testing.assert_allclose(got, ops.run(g, x, w, b, impl="reference"), rtol=1e-11, atol=1e-11)


def test_im2col_lies_tiles_weigh_the_kernels_copy_against_the_gather():
    """A forward kernel in PyTorch's layout is multiplied as it lies where it holds at least
    IM2COL_LIES_MIN_RATIO times the values the gather copies (its copy would cost more) and
    is large; the tiles then cover each output row of each item once, each within the
    larger of col's budget and the kernel's size (the copy it saves)."""
    now = gemm.settings()
    for spatial, cin, cout, batch in [((6, 8), 512, 512, 1), ((6, 8), 512, 512, 8), ((12, 16), 256, 256, 2),
                                      ((12, 16), 256, 256, 4), ((24, 32), 128, 128, 1), ((3, 4), 64, 64, 1)]:
        g = ops.plan_conv(spatial, (3, 3), cin, cout, padding="same")
        kernel = 9 * cin * cout
        gathered = batch * math.prod(spatial) * 9 * cin
        takes = (compiled.available() and kernel >= gemm.COL_LIES_MIN_KERNEL
                 and kernel >= gemm.IM2COL_LIES_MIN_RATIO * gathered)
        prepared = gemm.prepare(g, batch, now, lies=True)
        assert (prepared.lies is not None) == takes, (spatial, cin, cout, batch)
        assert gemm.prepare(g, batch, now).lies is None  # only for a kernel that lies
        if not takes:
            continue
        seen = np.zeros((batch, spatial[0]), int)
        limit = max(gemm._col_budget(g, batch, False), min(kernel, gemm.COL_MAX_TILE))
        for n0, n1, r0, r1 in prepared.lies:
            seen[n0:n1, r0:r1] += 1
            assert (n1 - n0) * (r1 - r0) * spatial[1] * 9 * cin <= max(limit, spatial[1] * 9 * cin)
        assert (seen == 1).all()
    # the copy it saves bounds the tiles: 6x8x512->512's columns (221k) are one tile, not six rows
    g = ops.plan_conv((6, 8), (3, 3), 512, 512, padding="same")
    if compiled.available():
        assert len(gemm.prepare(g, 1, now, lies=True).lies) == 1


def test_col_lies_tiles_cover_each_item_and_channel_once_within_the_budget():
    """The tiles of a kernel multiplied as it lies: each (item, output channel of a group)
    once, each tile's columns within the budget; blocks of channels over every item where
    the kernel outweighs the input (BLAS then packs it once), of items where the input does;
    None where one channel of one item does not fit."""
    for spatial, cin, cout, batch, limit in [((6, 8), 512, 256, 8, 550502), ((8, 8), 1024, 512, 1, 183501),
                                            ((48, 64), 64, 32, 8, 1 << 20), ((5, 6), 128, 256, 3, 5000)]:
        g = ops.plan_conv_transpose(spatial, (3, 3), cin, cout, stride=2, crop="same")
        tiles = gemm._col_lies_tiles(g, batch, limit)
        per_channel = math.prod(spatial) * 9
        if per_channel > limit:
            assert tiles is None
            continue
        seen = np.zeros((batch, cout), int)
        for n0, n1, c0, c1 in tiles:
            seen[n0:n1, c0:c1] += 1
            assert (n1 - n0) * (c1 - c0) * per_channel <= limit
        assert (seen == 1).all()
        items = {n1 - n0 for n0, n1, _, _ in tiles}
        if cin * cout * 9 > batch * math.prod(spatial) * cin:  # the kernel outweighs the input
            assert items == {batch}, tiles
        else:
            assert len({(c0, c1) for _, _, c0, c1 in tiles}) == 1, tiles


def test_col_path_runs_where_numba_is_installed():
    """CI installs the fast extra: the compiled path must be the one the benchmark layers
    take there, and switching it off must fall back to the NumPy paths."""
    seed = ops.plan_conv_transpose((8, 8), (3, 3), 1024, 512, stride=2, crop="same")
    assert compiled.available() and gemm._mode(seed) == "col"
    compiled.ENABLED = False
    try:
        assert gemm._mode(seed) != "col"
    finally:
        compiled.ENABLED = True


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("plan", [
    lambda: ops.plan_conv((19, 23), (3, 3), 3, 64, padding="same"),               # RGB in, the default pick
    lambda: ops.plan_conv((19, 23), (5, 3), 2, 4, stride=(2, 3), dilation=(1, 2), padding=((2, -1), (3, 0))),
    lambda: ops.plan_conv((40,), (4,), 3, 5, stride=2, padding="same"),
    lambda: ops.plan_conv((7, 6, 5), (3, 2, 3), 2, 6, padding=1),
])
@pytest.mark.parametrize("tile", [None, 1])
def test_im2col_path_matches_reference(plan, data_format, tile):
    """Forward im2col: the taps' cells gathered side by side and one product, whole items
    or one output row at a time, straight into a C-contiguous output or stored into a
    channels-first one, bias added; the same values as the reference loops."""
    if not compiled.available():
        pytest.skip("Numba is not installed (the fast extra): no im2col path to test")
    geometry = plan()
    if geometry.input_channels == 3 and geometry.rank == 2:  # few channels in: picked unforced
        assert gemm._mode(geometry) == "im2col"
    tiles = {} if tile is None else {"COL_MIN_TILE": tile, "COL_MAX_TILE": tile}
    _check_forced_path(geometry, "im2col", data_format, seed=3, **tiles)


@pytest.mark.parametrize("plan", [
    lambda: ops.plan_conv((19, 23), (3, 3), 5, 4, padding="same"),                  # the U-Net's kind
    lambda: ops.plan_conv((9, 12), (3, 5), 4, 3, padding="same", dilation=(2, 1)),  # two columns cut a side
    lambda: ops.plan_conv((9, 12), (2, 4), 3, 2, padding="same"),                   # even: uneven sides
    lambda: ops.plan_conv((9, 12), (3, 3), 3, 2, padding=((0, 2), (1, 1))),         # rows: any padding
    lambda: ops.plan_conv((9, 12), (3, 3), 3, 2, padding=((0, 0), (1, 1))),         # fewer rows out: per item
    lambda: ops.plan_conv((13,), (5,), 3, 4, padding=((3, 1),)),                    # 1-D: no column cut
    lambda: ops.plan_conv((9, 12), (3, 3), 12, 8, padding="same", groups=4),        # grouped
    lambda: ops.plan_conv_transpose((9, 12), (3, 3), 12, 6, crop="same", groups=3),  # grouped, mirrored
    lambda: ops.plan_conv_transpose((13,), (5,), 8, 4, crop=((1, 3),), groups=2),   # 1-D, mirrored
    lambda: ops.plan_conv((9, 12), (3, 3), 4, 3, dilation=(1, 2)),                 # 'valid': into a frame
    lambda: ops.plan_conv_transpose((9, 12), (3, 3), 4, 3, crop=2),                 # mirrored, a frame
    lambda: ops.plan_conv((5, 6, 7), (3, 3, 3), 4, 3, padding="same"),             # 3-D: planes in one run
    lambda: ops.plan_conv((5, 6, 7), (2, 3, 4), 4, 3, padding=((0, 2), (2, 2), (2, 1)), dilation=(1, 2, 1)),
    lambda: ops.plan_conv_transpose((4, 5, 6), (3, 3, 3), 8, 4, crop="same", groups=2),  # 3-D, mirrored
    lambda: ops.plan_conv_transpose((4, 5, 6), (3, 3, 2), 8, 4, crop=((0, 1), (0, 1), (0, 0))),  # 3-D extended
    lambda: ops.plan_conv((4, 7, 6), (3, 3, 3), 4, 3, padding=((1, 1), (0, 0), (1, 0))),  # 3-D, a frame
    lambda: ops.plan_conv((4, 7, 6), (3, 2, 3), 4, 3, padding=((1, 1), (1, 2), (0, 0))),  # extended and a frame
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("block", [1 << 19, 1])
def test_accumulate_adds_each_taps_product_into_the_output(plan, dtype, block):
    """accumulate: each tap's product added by BLAS into the output's cells as they lie,
    the cells of the columns a tap does not reach taken back, a block of output rows at a
    time (``block``: 1, one row a block; else the three items' cells in one run where
    their input and output have as many rows, the rows a tap does not reach at the items'
    edges kept aside too); grouped, a product per group, each group's channels read and
    written in place. The reference's values, with a bias; channels-first data (moved
    channels-last for it) gets the same."""
    if not blas.available():
        pytest.skip("threadpoolctl is not installed (the fast extra): NumPy's BLAS is not called directly")
    g = plan()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3,) + g.input_spatial + (g.input_channels,)).astype(dtype)
    w = rng.standard_normal(g.neutral_kernel_shape).astype(dtype)
    b = rng.standard_normal(g.output_channels).astype(dtype)
    want = ops.run(g, x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), impl="reference")
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    with _gemm_settings(MODE="accumulate", ACCUMULATE_BLOCK_ELEMENTS=block):
        assert gemm._mode(g) == "accumulate"
        run = gemm._accumulate_geometry(g)
        width = math.prod(run.output_spatial[1:])  # one row a block: each product within a row (3-D: a plane)
        assert all(p1 - p0 <= width for _, _, p0, p1, *_ in gemm._accumulate_plan(run, 3, 1))
        got = ops.run(g, x, w, b)
        first = ops.run(g, np.ascontiguousarray(np.moveaxis(x, -1, 1)), w, b, data_format="channels_first")
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(np.moveaxis(first, 1, -1), want, rtol=tolerance, atol=tolerance)


def test_strided_narrow_forward_layers_take_im2col():
    """Unforced, a forward convolution of a stride above 1 takes im2col up to
    IM2COL_STRIDED_MAX_CHANNELS input channels, whatever its columns per output channel (its
    other paths are per tap and concat); wider ones and unit strides keep the columns rule."""
    if not compiled.available():
        pytest.skip("Numba is not installed (the fast extra): no im2col path to test")
    assert gemm._mode(ops.plan_conv((40, 40), (5, 5), 16, 64, stride=2, padding="same")) == "im2col"
    assert gemm._mode(ops.plan_conv((2048,), (5,), 64, 32, stride=2, padding="same")) == "im2col"
    assert gemm._mode(ops.plan_conv((14, 14), (3, 3), 512, 128, stride=2, padding="same")) != "im2col"
    assert gemm._mode(ops.plan_conv((40, 40), (5, 5), 16, 64, padding="same")) != "im2col"


def test_accumulate_computes_a_valid_convolution_into_a_frame():
    """A forward convolution whose output rows are narrower than its input rows ('valid',
    PyTorch's padding=0) runs accumulate into a frame as wide as the input's rows
    (Geometry.padded_more: the same output in its first columns), copied out: the
    reference's values, the frame counted in the temporaries; picked unforced with 128 input
    channels and more or calls of 2^20 output elements and more, else the other path."""
    if not (blas.available() and compiled.available()):
        pytest.skip("the fast extra (threadpoolctl, Numba) is not installed")
    wide = ops.plan_conv((28, 28), (3, 3), 128, 64)
    narrow = ops.plan_conv((64, 64), (3, 3), 16, 16)
    assert gemm._accumulate_geometry(wide).output_spatial == (26, 28)
    assert gemm.prepare(wide, 1, gemm.settings()).mode == "accumulate"
    assert gemm.prepare(narrow, 1, gemm.settings()).mode != "accumulate"     # 62x62x16: 61k elements
    assert gemm.prepare(narrow, 32, gemm.settings()).mode == "accumulate"    # 1.97M
    assert gemm.prepare(wide, 2, gemm.settings()).mode != "accumulate"  # 728 cells an item: items of their own
    _check_values_and_peak(wide, 1, least=26 * 28 * 64 * 4)  # the frame


def test_a_convolution_padded_more_has_the_output_in_its_cells():
    """Geometry.padded_more: at unit strides, the output with the padding larger by (lo, hi)
    holds the plain output at cells lo .. lo + out (reference loops); strided and transposed
    plans and negative pads refused."""
    g = ops.plan_conv((7, 9), (3, 4), 3, 2, padding=((1, -1), (0, 2)), dilation=(2, 1))
    x, w, b = arrays_for(g, 2)
    want = ops.run(g, x, w, b, impl="reference")
    p = g.padded_more(((2, 1), (0, 3)))
    got = ops.run(p, x, w, b, impl="reference")
    np.testing.assert_allclose(got[:, 2:2 + want.shape[1], 0:want.shape[2]], want, rtol=1e-12, atol=1e-12)
    for bad in (ops.plan_conv((7,), (3,), 2, 2, stride=2), ops.plan_conv_transpose((4,), (3,), 2, 2)):
        with pytest.raises(TconvError, match="pads"):
            bad.padded_more(((0, 1),))
    with pytest.raises(TconvError, match="pads"):
        g.padded_more(((0, -1), (0, 0)))


def test_an_extended_input_gives_the_same_output():
    """Geometry.extended: the forward convolution of the input extended by zero cells, its
    padding less by as much, equals the plain one (reference loops, random pads within the
    padding, cropped sides left alone); pads beyond the padding and transposed plans refused."""
    rng = np.random.default_rng(8)
    g = ops.plan_conv((7, 9), (3, 4), 3, 2, padding=((2, -1), (3, 1)), dilation=(1, 2))
    x, w, b = arrays_for(g, 1)
    want = ops.run(g, x, w, b, impl="reference")
    for lo0, lo1, hi1 in rng.integers(0, 2, (4, 3)) * (2, 3, 1):
        e = g.extended(((int(lo0), 0), (int(lo1), int(hi1))))
        wide = np.zeros((x.shape[0],) + e.input_spatial + (3,))
        wide[:, lo0:lo0 + 7, lo1:lo1 + 9] = x
        np.testing.assert_allclose(ops.run(e, wide, w, b, impl="reference"), want, rtol=1e-12, atol=1e-12)
    for pads in (((3, 0), (0, 0)), ((0, 1), (0, 0)), ((0, 0), (0, 2)), ((0, 0),)):
        with pytest.raises(TconvError, match="pads"):
            g.extended(pads)
    with pytest.raises(TconvError, match="pads"):
        ops.plan_conv_transpose((4, 4), (3, 3), 2, 2).extended(((0, 0), (0, 0)))


def test_accumulate_extends_the_input_to_the_outputs_width():
    """A stride-1 transposed convolution cropped less than 'same' (output rows wider than the
    input's) runs accumulate on its input extended by zero columns (Geometry.extended, the
    same output): the reference's values, the extended copy counted in the temporaries; picked
    unforced only for items of enough output cells (ACCUMULATE_WIDENED_MIN_CELLS, and
    ACCUMULATE_WIDENED_BATCH_CELLS on several items), else col."""
    if not (blas.available() and compiled.available()):
        pytest.skip("the fast extra (threadpoolctl, Numba) is not installed")
    g = ops.plan_conv_transpose((30, 40), (4, 3), 8, 6, crop=((0, 1), (0, 1)))  # 30x40 -> 32x41
    e = gemm._accumulate_geometry(g)
    assert e.input_spatial == (30, 41) and e.output_spatial == g.output_spatial and not e.transposed
    assert gemm._mode(g) == "accumulate"
    assert gemm.prepare(g, 1, gemm.settings()).mode == "accumulate"  # 1312 cells an item
    assert gemm.prepare(g, 4, gemm.settings()).mode == "accumulate"
    small = ops.plan_conv_transpose((12, 16), (3, 3), 8, 6)  # 14x18 = 252 cells an item
    assert gemm._mode(small) == "accumulate" and gemm.prepare(small, 1, gemm.settings()).mode == "col"
    middle = ops.plan_conv_transpose((24, 32), (3, 3), 8, 6)  # 26x34 = 884
    assert [gemm.prepare(middle, n, gemm.settings()).mode for n in (1, 2)] == ["accumulate", "col"]
    _check_values_and_peak(g, 2, least=2 * 30 * 41 * 8 * 4)  # the extended input


def _check_values_and_peak(geometry, batch, least):
    """The call's values against the reference (float32), and its traced peak on a second
    run at least ``least`` bytes and within the bound the budget checks."""
    import tracemalloc

    x, w, b = arrays_for(geometry, 7, np.float32, batch=batch)
    want = ops.run(geometry, x, w, b, impl="reference")
    np.testing.assert_allclose(ops.run(geometry, x, w, b), want, rtol=1e-4, atol=1e-4)
    out = np.empty(want.shape, np.float32)
    compute = gemm.conv_transpose if geometry.transposed else gemm.conv
    compute(x, w, geometry, b, out=out)
    tracemalloc.start()
    compute(x, w, geometry, b, out=out)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert least <= peak <= gemm.temporary_elements(geometry, batch) * 4 + 131072, (peak, least)


def test_grouped_layers_take_accumulate_from_four_channels_a_group():
    """Unforced, grouped layers of unit strides and rows as wide take accumulate from
    ACCUMULATE_MIN_GROUP_CHANNELS input channels per group (both directions), unless they have
    many groups (GROUPED_PERMUTED_MIN_GROUPS: the compiled loop on the input permuted); fewer
    stay on the compiled direct loop (depthwise among them); strided forward ones take im2col
    (a gather and a product per group), strided transposed ones col."""
    if not (blas.available() and compiled.available()):
        pytest.skip("the fast extra (threadpoolctl, Numba) is not installed")
    assert gemm.ACCUMULATE_MIN_GROUP_CHANNELS == 4 and gemm.GROUPED_PERMUTED_MIN_GROUPS == 32
    assert gemm._mode(ops.plan_conv((28, 28), (3, 3), 64, 64, padding="same", groups=16)) == "accumulate"
    assert gemm._mode(ops.plan_conv((28, 28), (3, 3), 128, 128, padding="same", groups=32)) == "grouped"
    assert gemm._mode(ops.plan_conv_transpose((28, 28), (3, 3), 64, 32, crop="same", groups=16)) == "accumulate"
    assert gemm._mode(ops.plan_conv((28, 28), (3, 3), 128, 128, padding="same", groups=64)) == "grouped"
    assert gemm._mode(ops.plan_conv((28, 28), (3, 3), 128, 128, padding="same", groups=128)) == "grouped"
    assert gemm._mode(ops.plan_conv((28, 28), (3, 3), 64, 64, stride=2, padding="same", groups=2)) == "im2col"
    assert gemm._mode(ops.plan_conv((28, 28), (3, 3), 64, 64, stride=2, padding="same", groups=32)) == "grouped"
    assert gemm._mode(ops.plan_conv((28, 28), (1, 1), 64, 64, stride=2, groups=2)) == "concat"  # one tap
    assert gemm._mode(ops.plan_conv_transpose((28, 28), (3, 3), 64, 64, stride=2, crop="same", groups=2)) == "col"


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_a_transposed_convolution_of_unit_strides_is_its_mirrored_forward_one(rank, seed):
    """Geometry.mirrored and layout.mirrored_kernel: a transposed convolution of unit strides
    equals the forward convolution that reads its taps mirrored, channels the other way
    (the reference loops both ways, random kernels, dilations, crops and groups); and gemm
    runs it so (accumulate, the kernel read in place, a product per group), with the
    reference's values."""
    rng = np.random.default_rng(seed)
    groups = int(rng.choice([1, 2]))
    spatial = tuple(int(v) for v in rng.integers(3, 9 if rank < 3 else 6, rank))
    kernel = tuple(int(v) for v in rng.integers(1, 4, rank))
    dilation = tuple(int(v) for v in rng.integers(1, 3, rank))
    crop = tuple((int(rng.integers(-1, 3)), int(rng.integers(-1, 3))) for _ in range(rank))
    try:
        g = ops.plan_conv_transpose(spatial, kernel, 2 * groups, 3 * groups, dilation=dilation, crop=crop,
                                    groups=groups)
    except TconvError:
        return  # a crop that leaves nothing
    x = rng.standard_normal((2,) + g.input_spatial + (g.input_channels,))
    w = rng.standard_normal(g.neutral_kernel_shape)
    b = rng.standard_normal(g.output_channels)
    want = ops.run(g, x, w, b, impl="reference")
    m = g.mirrored()
    assert (m.input_spatial, m.output_spatial, m.transposed) == (g.input_spatial, g.output_spatial, False)
    np.testing.assert_allclose(ops.run(m, x, layout.mirrored_kernel(w, groups), b, impl="reference"), want,
                               rtol=1e-12, atol=1e-12)
    with _gemm_settings(MODE="accumulate"):
        # rows (3-D: planes) as large, or the input extended to the output's, or the output
        # computed in a frame as large as the input's
        assert (gemm._mode(g) == "accumulate") == blas.available()  # groups or none
        np.testing.assert_allclose(ops.run(g, x, w, b), want, rtol=1e-12, atol=1e-12)
    with pytest.raises(TconvError, match="unit strides"):
        ops.plan_conv_transpose(spatial, kernel, 2, 3, stride=2).mirrored()


def test_accumulate_keeps_the_cells_a_tap_does_not_reach_exact():
    """The cells of a tap's run whose column it does not reach read the neighbouring row's
    edge cell; accumulate keeps their values aside and puts them back, so an edge cell of
    any value leaves them exact: infinite or NaN edge cells give the reference's NaNs and
    infinities and no others, and an edge cell of 1e30 (float64) leaves the cells of size 1
    beside it within 1e-9 (a product taken back instead, ``alpha = -1``, left errors of
    1e14 there). Every call stays on accumulate."""
    if not blas.available():
        pytest.skip("threadpoolctl is not installed (the fast extra): NumPy's BLAS is not called directly")
    g = ops.plan_conv((6, 7), (3, 3), 4, 3, padding="same")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 7, 4))
    w = rng.standard_normal(g.neutral_kernel_shape)
    edges = x.copy()
    edges[0, 2, 6, 1] = np.inf  # the last column: the tap reading one to the right wraps onto it
    edges[1, 3, 0, 2] = np.nan  # the first column
    huge = x.copy()
    huge[0, 2, 6, :] = 1e30
    huge[1, 3, 0, :] = -1e30
    calls = []
    real = gemm._run_mode

    def counted(mode, *args):
        calls.append(mode)
        return real(mode, *args)

    with _gemm_settings(MODE=None), _replaced(gemm, "ACCUMULATE_MIN_CHANNELS", 1), \
            _replaced(gemm, "_run_mode", counted), np.errstate(invalid="ignore"):
        assert gemm._mode(g) == "accumulate"
        got = {name: ops.run(g, source, w) for name, source in (("edges", edges), ("huge", huge))}
    assert calls == ["accumulate", "accumulate"]
    with np.errstate(invalid="ignore"):
        want = {name: ops.run(g, source, w, impl="reference") for name, source in (("edges", edges), ("huge", huge))}
    np.testing.assert_array_equal(np.isnan(got["edges"]), np.isnan(want["edges"]))
    np.testing.assert_array_equal(np.isinf(got["edges"]), np.isinf(want["edges"]))
    kept = np.isfinite(want["edges"])
    np.testing.assert_allclose(got["edges"][kept], want["edges"][kept], rtol=1e-12, atol=1e-12)
    small = np.abs(want["huge"]) < 1e3  # the cells that do not read the huge ones
    assert small.sum() > want["huge"].size // 2
    np.testing.assert_allclose(got["huge"][small], want["huge"][small], rtol=0, atol=1e-9)
    np.testing.assert_allclose(got["huge"], want["huge"], rtol=1e-12)


@pytest.mark.parametrize("groups", [1, 4])
def test_accumulate_holds_no_temporaries_beyond_its_bound(groups):
    """accumulate gathers nothing and keeps no scratch: a call's traced peak beyond the
    output is a few kB (the edge cells kept aside during a tap's product), within the
    bound the budget checks, which covers the other path an output of other strides takes."""
    import tracemalloc

    if not blas.available():
        pytest.skip("threadpoolctl is not installed (the fast extra): NumPy's BLAS is not called directly")
    g = ops.plan_conv((96, 128), (3, 3), 32, 32, padding="same", groups=groups)
    assert gemm._mode(g) == "accumulate"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 96, 128, 32)).astype(np.float32)
    w = rng.standard_normal(g.neutral_kernel_shape).astype(np.float32)
    out = np.empty((2, 96, 128, 32), np.float32)
    gemm.conv(x, w, g, None, out=out)
    tracemalloc.start()
    gemm.conv(x, w, g, None, out=out)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak <= 96 * 32 * 4 + 16384, peak  # an edge column of a block, kept aside
    assert peak < gemm.temporary_elements(g, 2) * 4


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_call_accumulate_cannot_add_into_runs_on_the_path_it_stands_in_for(transposed, rank, dtype):
    """Layers accumulate takes, called with an output it cannot add into as one run (written
    channels-first), under the settings as shipped: the path picked for them otherwise runs
    the call, prepared as that path is (col's tables and tiles for a transposed layer), and
    agrees with the reference. Before, a transposed one raised KeyError: 'col' (torch's
    ``conv_transpose2d(x, w, stride=1, padding=1)`` among them)."""
    if not blas.available():
        pytest.skip("threadpoolctl is not installed (the fast extra): NumPy's BLAS is not called directly")
    spatial, kernel = ((9, 11), (3, 3)) if rank == 2 else ((13,), (5,))
    plan = ops.plan_conv_transpose if transposed else ops.plan_conv
    g = plan(spatial, kernel, 12, 5, **({"crop": "same"} if transposed else {"padding": "same"}))
    assert gemm._mode(g) == "accumulate"
    assert gemm._other_mode(g) == "col" or not transposed
    x, w, b = arrays_for(g, 3, dtype)
    first = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    got = ops.run(g, first, w, b, data_format="channels_first")
    want = ops.run(g, first, w, b, impl="reference", data_format="channels_first")
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance)
    last = ops.run(g, x, w, b)  # channels-last: accumulate itself
    np.testing.assert_allclose(np.moveaxis(last, -1, 1), want, rtol=tolerance, atol=tolerance)


def test_blas_adds_a_product_into_rows_of_any_stride():
    """tconv.kernels.blas.add_product: NumPy's own BLAS, ``c = alpha a @ b + beta c`` in
    place on strided rows; rows whose elements are not adjacent are refused by name."""
    if not blas.available():
        pytest.skip("threadpoolctl is not installed (the fast extra): NumPy's BLAS is not called directly")
    rng = np.random.default_rng(4)
    for dtype in (np.float32, np.float64):
        a = rng.standard_normal((9, 8)).astype(dtype)
        b = rng.standard_normal((5, 6)).astype(dtype)
        c = rng.standard_normal((10, 10)).astype(dtype)
        want = c.copy()
        want[1::3, 2:8] = 0.5 * want[1::3, 2:8] - 2.0 * a[::3, 3:8] @ b
        blas.add_product(a[::3, 3:8], b, c[1::3, 2:8], alpha=-2.0, beta=0.5)
        np.testing.assert_allclose(c, want, rtol=1e-5)
    with pytest.raises(ValueError, match="adjacent"):
        blas.add_product(a[:, ::2], b[:4], c[:9, :6])
    with pytest.raises(ValueError, match="shapes"):
        blas.add_product(a, b, c)


def test_forward_paths_picked_by_the_kernels_shape():
    """The rules of gemm._mode on the forward layers they were measured on. Without NumPy's
    BLAS to add in place: im2col for few input channels, rows for narrow 3x3 and 5x5 layers
    of many rows, shift for wide ones, for small items and for a kernel of one row or one
    tap (whose gather would stack nothing, or copy the input) and for a dilated one. With
    it, accumulate for the narrow layers of many cells, the others as they were."""
    if not compiled.available() or not blas.available():
        pytest.skip("Numba or threadpoolctl is not installed (the fast extra): no im2col or accumulate path")
    picks = {
        "im2col": [((96, 128), (3, 3), 3, 32), ((48, 64), (3, 3), 32, 64)],
        "rows": [((96, 128), (3, 3), 32, 32), ((96, 128), (3, 3), 64, 32), ((48, 64), (3, 3), 64, 64),
                 ((64, 64), (5, 5), 32, 32)],
        "shift": [((96, 128), (1, 1), 32, 23), ((48, 64), (3, 3), 128, 64), ((12, 16), (3, 3), 32, 32),
                  ((96, 128), (1, 3), 64, 32)],
    }
    accumulate = {((48, 64), (3, 3), 32, 64), ((96, 128), (3, 3), 32, 32), ((96, 128), (3, 3), 64, 32),
                  ((48, 64), (3, 3), 64, 64), ((64, 64), (5, 5), 32, 32), ((48, 64), (3, 3), 128, 64),
                  ((96, 128), (1, 3), 64, 32), ((12, 16), (3, 3), 32, 32)}
    dilated = ops.plan_conv((48, 64), (3, 3), 64, 64, padding="same", dilation=2)
    wide = ops.plan_conv((6, 8), (3, 3), 1024, 1024, padding="same")  # a kernel of 9.4M elements
    for with_blas in (False, True):
        with _replaced(blas, "ENABLED", with_blas):
            for mode, layers in picks.items():
                for layer in layers:
                    want = "accumulate" if with_blas and layer in accumulate else mode
                    assert gemm._mode(ops.plan_conv(*layer, padding="same")) == want, (layer, with_blas)
            assert gemm._mode(dilated) == ("accumulate" if with_blas else "shift")
            assert gemm._mode(wide) == "shift"


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("plan", [
    lambda: ops.plan_conv((19, 23), (3, 3), 8, 8, padding="same"),              # picked unforced
    lambda: ops.plan_conv((19, 23), (5, 3), 3, 4, stride=(1, 3), dilation=(2, 2), padding=((3, -1), (4, 0))),
    lambda: ops.plan_conv((6, 9), (3, 2), 2, 5, padding=((-2, 5), (1, 1))),      # kernel rows reaching no row
    lambda: ops.plan_conv((4, 9), (3, 2), 2, 5, dilation=(3, 1), padding=((4, 4), (0, 0))),  # none reaching some rows
])
@pytest.mark.parametrize("tile", [None, 1])
def test_rows_path_matches_reference(plan, data_format, tile):
    """Forward "rows": the input rows a step reads gathered once with each row's taps side
    by side, one product with every kernel row, each output row the sum of its kernel rows'
    products (into the output, or a channels-first one's accumulator); one output row a
    step or many, later steps reusing the products they share with the one before; zeros
    where taps read padding, kernel rows that reach nothing skipped; with Numba's gather and
    sum and without (NumPy); the same values as the reference loops."""
    geometry = plan()
    if geometry.input_channels == 8:  # a small kernel, 19 x 23 cells: picked unforced (accumulate first)
        with _replaced(blas, "ENABLED", False):
            assert gemm._mode(geometry) == "rows"
        assert gemm._mode(geometry) == ("accumulate" if blas.available() else "rows")
    tiles = {} if tile is None else {"ROWS_TILE_ELEMENTS": tile}
    _check_forced_path(geometry, "rows", data_format, seed=5, **tiles)
    with _replaced(compiled, "ENABLED", False):
        _check_forced_path(geometry, "rows", data_format, seed=5, **tiles)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("plan", [
    lambda: ops.plan_conv((12, 16), (3, 3), 128, 128, padding="same"),          # picked unforced
    lambda: ops.plan_conv((9, 7), (5, 3), 40, 8, dilation=(2, 1), padding=((3, -1), (0, 2))),
    lambda: ops.plan_conv((5, 4), (3, 3), 32, 4, dilation=2, padding=((4, 4), (3, 3))),  # cells no tap reaches
    lambda: ops.plan_conv((30,), (5,), 32, 8, padding="same"),                   # 1-D
    lambda: ops.plan_conv((12, 16), (3, 3), 128, 64, padding="valid"),
])
@pytest.mark.parametrize("tile", [None, 1])
def test_shift_path_matches_reference(plan, data_format, tile):
    """Forward "shift": each tap's product over whole input rows as they lie, its cells
    shifted into place (the covering tap writes the tile, in place where nothing is cut, the
    others add; tiles no tap covers zeroed first), whole items side by side or rows of one
    item; the same values as the reference loops."""
    geometry = plan()
    if geometry.input_spatial == (12, 16) and geometry.kernel_shape == (3, 3):  # picked unforced (accumulate first)
        with _replaced(blas, "ENABLED", False):
            assert gemm._mode(geometry) == "shift"
    tiles = {} if tile is None else {"SHIFT_TILE_ELEMENTS": tile}
    _check_forced_path(geometry, "shift", data_format, seed=11, **tiles)


def test_shift_holds_one_product_per_tile():
    """Channels-last, "shift" allocates nothing beyond one tile's product: the taps' products
    (of 11 and 12 rows here) share one buffer, which is never made while another holds the
    last (it was: 1.9x the output, against 1.0x now)."""
    import tracemalloc

    geometry = ops.plan_conv((12, 16), (3, 3), 256, 256, padding="same")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 12, 16, 256)).astype(np.float32)
    w = rng.standard_normal(geometry.neutral_kernel_shape).astype(np.float32)
    out = np.empty((1, 12, 16, 256), np.float32)
    with _replaced(blas, "ENABLED", False):  # where NumPy's BLAS is called directly, accumulate runs it
        assert gemm._mode(geometry) == "shift"
        gemm.conv(x, w, geometry, out=out)
        workspace.release()
        tracemalloc.start()
        gemm.conv(x, w, geometry, out=out)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak <= out.nbytes + 16384, (peak, out.nbytes)  # the largest product is the output's size


@pytest.mark.parametrize("stride, dilation, crop", [
    (2, 1, "same"),         # kernel rows 0 and 2 reach the odd rows, row 1 the even ones
    (3, 1, ((-2, -1), (0, 0))),  # stride beyond the kernel plus extended edges: rows no tap reaches
    (2, 2, ((1, 1), (2, -1))),   # dilated: every kernel row reaches the same phase
])
def test_col_kernel_row_tiles_write_each_row_once_then_add(stride, dilation, crop):
    """col's kernel-row tiles: a row is written (from the bias) by the first tile reaching
    it, added to by later ones, skipped by the rest, and rows no tap reaches still get the
    bias; the same values as one tile and as the reference loops."""
    if not compiled.available():
        pytest.skip("Numba is not installed (the fast extra): no col path to test")
    geometry = ops.plan_conv_transpose((5, 4), (3, 2), 16, 6, stride=stride, dilation=dilation, crop=crop)
    x = np.random.default_rng(7).standard_normal((2, 5, 4, 16))
    # a budget of one kernel row over one item: each item runs as three tiles of one kernel row
    row = gemm._col_row(geometry) * geometry.input_spatial[0]
    with _gemm_settings(MODE="col", COL_MIN_TILE=row, COL_MAX_TILE=row):
        tiles = gemm._col_tiles(geometry, 2, gemm._col_budget(geometry, 2, False), False,
                                gemm.COL_ROW_GROUPS_GAIN)
    assert [t[4:6] for t in tiles] == [(0, 1), (1, 2), (2, 3)] * 2
    _check_forced_path(geometry, "col", seed=7, x=x, COL_MIN_TILE=row, COL_MAX_TILE=row)


@pytest.mark.parametrize("spatial, channels, gain, tiles", [
    # the kernel the larger: one kernel row over all four items a tile (BLAS packs 0.46 of
    # what blocks of whole items pack), unless the gain asked for is smaller than that
    ((3, 4), (64, 16), 0.7, [(0, 4, 0, 1), (0, 4, 1, 2), (0, 4, 2, 3)]),
    ((3, 4), (64, 16), 0.4, [(0, 1, 0, 3), (1, 2, 0, 3), (2, 3, 0, 3), (3, 4, 0, 3)]),
    # the input the larger: whole items, every kernel row a tile
    ((3, 16), (8, 4), 0.7, [(0, 1, 0, 3), (1, 2, 0, 3), (2, 3, 0, 3), (3, 4, 0, 3)]),
])
def test_col_tiles_a_batch_by_kernel_rows_where_blas_packs_less(spatial, channels, gain, tiles):
    """Where every tap over the batch does not fit, col takes groups of kernel rows over
    blocks of items or blocks of whole items, whichever makes BLAS pack less (the kernel
    once per block of items, the input once per group of kernel rows); both give the
    reference's values, and side by side the tiles stay whole items (disjoint outputs)."""
    if not compiled.available():
        pytest.skip("Numba is not installed (the fast extra): no col path to test")
    g = ops.plan_conv_transpose(spatial, (3, 3), *channels, stride=2, crop="same")
    budget = 4 * gemm._col_row(g) * g.input_spatial[0]  # one kernel row over four items
    settings = dict(COL_MIN_TILE=budget, COL_MAX_TILE=budget, COL_ROW_GROUPS_GAIN=gain)
    with _gemm_settings(MODE="col", **settings):
        planned = gemm._col_plan(g, 4, gemm.settings())[1]
        side_by_side = gemm._col_tiles(g, 4, budget, True, gain)
    assert [t[:2] + t[4:6] for t in planned] == tiles
    assert all(t[4:6] == (0, 3) for t in side_by_side)
    x = np.random.default_rng(3).standard_normal((4,) + g.input_spatial + (g.input_channels,))
    _check_forced_path(g, "col", seed=3, x=x, **settings)


@pytest.mark.parametrize("spatial, kernel, stride, dilation, crop, groups, data_format", [
    ((6, 8), (3, 3), 2, 1, "same", 1, "channels_last"),            # the U-Net's layers
    ((5, 4), (3, 2), 3, 1, ((-2, -1), (0, 0)), 1, "channels_last"),  # rows and cells no tap reaches
    ((5, 6), (3, 3), 2, 2, ((1, 1), (2, -1)), 2, "channels_last"),    # dilated, grouped
    ((4, 5, 3), (3, 2, 3), (2, 1, 3), 1, "same", 1, "channels_first"),  # 3-D, merged cells strided
    ((7,), (4,), 2, 1, "valid", 1, "channels_last"),               # 1-D: col2im_1d on both products
])
def test_col2im_on_contiguous_columns_matches_the_strided_kernel_bit_for_bit(spatial, kernel, stride, dilation,
                                                                            crop, groups, data_format):
    """col2im on C-contiguous columns (one merged index per pair, ``_col_offsets``) sums the same
    columns in the same order as col2im_strided (six axes, a table per axis): equal bit for
    bit, with kernel-row tiles, one tile, and an output whose last two axes do not merge."""
    if not compiled.available():
        pytest.skip("Numba is not installed (the fast extra): no col path to test")
    g = ops.plan_conv_transpose(spatial, kernel, 8 * groups, 5 * groups, stride=stride, dilation=dilation,
                                crop=crop, groups=groups)
    x, w, b = arrays_for(g, 3, dtype=np.float32, batch=2)
    if data_format == "channels_first":
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    row = gemm._col_row(g) * g.input_spatial[0]
    for tiles in (dict(COL_MIN_TILE=row, COL_MAX_TILE=row), dict(COL_MIN_TILE=1 << 20)):
        results = []
        for few_cells in (0, 1 << 62):
            with _gemm_settings(MODE="col", COL_FEW_CELLS=few_cells, **tiles):
                results.append(ops.run(g, x, w, b, data_format=data_format))
        np.testing.assert_array_equal(results[0], results[1])
    want = ops.run(g, x.astype(np.float64), w, b, impl="reference", data_format=data_format)
    np.testing.assert_allclose(results[0], want, rtol=1e-5, atol=1e-5)
    if g.rank == 3:  # an output whose rows' cells are not evenly spaced: the strided kernel
        src = x if data_format == "channels_last" else np.moveaxis(x, 1, -1)
        wide = np.full((2,) + g.output_spatial[:2] + (g.output_spatial[2] + 1, g.output_channels), np.nan,
                       np.float32)
        out = wide[:, :, :, :-1]
        assert gemm._cells_view(out, 3) is None and gemm._cells_view(out[:, :, :1], 3) is not None
        with _gemm_settings(MODE="col", COL_FEW_CELLS=0):
            gemm.conv_transpose(src, w, g, b, out)
        expected = results[0] if data_format == "channels_last" else np.moveaxis(results[0], 1, -1)
        np.testing.assert_array_equal(out, expected)
        assert np.isnan(wide[:, :, :, -1]).all()


def test_im2col_on_a_source_whose_cells_do_not_merge_matches_bit_for_bit():
    """im2col gathers from a source whose last two axes merge (one index per pair,
    ``_col_pairs``); a 3-D source whose rows' cells are not evenly spaced takes the per-axis
    tables (im2col_strided): the same columns, so the same output bit for bit."""
    if not compiled.available():
        pytest.skip("Numba is not installed (the fast extra): no im2col path to test")
    g = ops.plan_conv((5, 6, 4), (3, 2, 3), 3, 7, stride=(1, 2, 1), padding="same")
    x, w, b = arrays_for(g, 5, dtype=np.float32, batch=2)
    wide = np.full(x.shape[:3] + (x.shape[3] + 1, x.shape[4]), np.nan, np.float32)
    wide[:, :, :, :-1] = x
    strided = wide[:, :, :, :-1]
    assert gemm._cells_view(strided, 3) is None and gemm._cells_view(x, 3) is not None
    with _gemm_settings(MODE="im2col"):
        merged, per_axis = gemm.conv(x, w, g, b), gemm.conv(strided, w, g, b)
    np.testing.assert_array_equal(merged, per_axis)
    np.testing.assert_allclose(merged, ops.run(g, x.astype(np.float64), w, b, impl="reference"), rtol=1e-5,
                               atol=1e-5)


_TEMPORARY_CASES = {
    # name: (plan, input shape, mode); temporaries of about 1 MB and more, so that the
    # tiles, not Python's own bookkeeping (free lists of tuples, ~100 kB), decide the peak
    "conv 3x3 same (flat)": (lambda: ops.plan_conv((64, 64), (3, 3), 32, 32, padding="same"), (2, 64, 64, 32),
                             "flat"),
    "conv stride 2 (per tap)": (lambda: ops.plan_conv((64, 64), (3, 3), 64, 128, stride=2, padding="same"),
                                (2, 64, 64, 64), None),
    "conv RGB 3x3 (im2col)": (lambda: ops.plan_conv((128, 128), (3, 3), 3, 64, padding="same"), (2, 128, 128, 3),
                              None),
    "conv RGB 3x3 -> 32 (im2col)": (lambda: ops.plan_conv((128, 128), (3, 3), 3, 32, padding="same"),
                                    (2, 128, 128, 3), None),
    "conv 3x3 64 -> 32 (rows)": (lambda: ops.plan_conv((96, 128), (3, 3), 64, 32, padding="same"),
                                 (2, 96, 128, 64), "rows"),
    "conv 3x3 16 -> 16 (im2col, row tiles)": (lambda: ops.plan_conv((128, 128), (3, 3), 16, 16, padding="same"),
                                              (1, 128, 128, 16), "im2col"),
    "conv 3x3 32 -> 32 (rows)": (lambda: ops.plan_conv((96, 128), (3, 3), 32, 32, padding="same"),
                                 (1, 96, 128, 32), "rows"),
    "conv grouped (concat)": (lambda: ops.plan_conv((64, 64), (3, 3), 64, 64, padding="same", groups=4),
                              (2, 64, 64, 64), "concat"),
    "transposed k3 s2 (col)": (lambda: ops.plan_conv_transpose((48, 64), (3, 3), 64, 32, stride=2, crop="same"),
                               (2, 48, 64, 64), "col"),
    "transposed k3 s2 (flat)": (lambda: ops.plan_conv_transpose((48, 64), (3, 3), 64, 32, stride=2, crop="same"),
                                (2, 48, 64, 64), "flat"),
    "transposed 1-D (col, blocks of cells)": (lambda: ops.plan_conv_transpose((16384,), (4,), 64, 32, stride=2,
                                                                           crop="same"), (1, 16384, 64), "col"),
    "transposed wide (col)": (lambda: ops.plan_conv_transpose((6, 8), (3, 3), 512, 256, stride=2, crop="same"),
                              (2, 6, 8, 512), "col"),
    "transposed wide (per tap)": (lambda: ops.plan_conv_transpose((6, 8), (3, 3), 512, 256, stride=2, crop="same"),
                                  (2, 6, 8, 512), "per_tap"),
    "transposed stride 1 (col, row blocks)": (lambda: ops.plan_conv_transpose((128, 128), (3, 3), 64, 32,
                                                                              crop=1), (1, 128, 128, 64), "col"),
    "transposed 1-D k4 s2 (per tap)": (lambda: ops.plan_conv_transpose((4096,), (4,), 64, 32, stride=2, crop=1),
                                       (2, 4096, 64), None),
    "forward (shift)": (lambda: ops.plan_conv((12, 16), (3, 3), 256, 256, padding="same"), (1, 12, 16, 256),
                        "shift"),
    "forward rows of one item (shift)": (lambda: ops.plan_conv((96, 128), (3, 3), 64, 32, padding="same"),
                                         (2, 96, 128, 64), "shift"),
    "forward side by side (rows)": (lambda: ops.plan_conv((96, 128), (3, 3), 32, 32, padding="same"),
                                    (1, 96, 128, 32), "rows"),
    "transposed side by side (col)": (lambda: ops.plan_conv_transpose((48, 64), (3, 3), 64, 32, stride=2,
                                                                      crop="same"), (2, 48, 64, 64), "col"),
    "transposed 3-D (col)": (lambda: ops.plan_conv_transpose((16, 16, 16), (3, 3, 3), 32, 16, stride=2,
                                                             crop="same"), (2, 16, 16, 16, 32), "col"),
    "transposed grouped (col)": (lambda: ops.plan_conv_transpose((24, 32), (3, 3), 128, 64, stride=2,
                                                                 crop="same", groups=4), (2, 24, 32, 128), "col"),
    "transposed grouped (concat)": (lambda: ops.plan_conv_transpose((24, 32), (3, 3), 128, 64, stride=2,
                                                                    crop="same", groups=4), (2, 24, 32, 128),
                                    "concat"),
}


@pytest.mark.parametrize("case", sorted(_TEMPORARY_CASES))
def test_gemm_temporaries_stay_within_the_stated_bound(case):
    """The bound the memory budget checks (gemm.temporary_elements) holds: peak traced
    memory beyond the output on a second run (plans cached), whether the call finds a CPU
    idle (tiles side by side, where the layer takes that) or not."""
    plan, shape, mode = _TEMPORARY_CASES[case]
    geometry = plan()
    with _gemm_settings(MODE=mode):
        _check_temporaries(geometry, shape)


def _check_temporaries(geometry, shape):
    """The peak of a call run both ways (threads.idle True and False) within the bound, and
    the larger of the two at least a quarter of it (the bound is not vacuous)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(geometry.neutral_kernel_shape).astype(np.float32)
    b = rng.standard_normal(geometry.output_channels).astype(np.float32)
    compute = gemm.conv_transpose if geometry.transposed else gemm.conv
    out = np.empty((shape[0],) + geometry.output_spatial + (geometry.output_channels,), np.float32)
    bound = gemm.temporary_elements(geometry, shape[0]) * x.itemsize
    peaks = []
    for idle in (False, True):
        with _replaced(threads, "idle", lambda helpers, idle=idle: idle):
            compute(x, w, geometry, b, out=out)
            workspace.release()  # every thread's scratch buffer is allocated again, and counted
            tracemalloc.start()
            compute(x, w, geometry, b, out=out)
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
    assert max(peaks) <= bound + 131072, (peaks, bound)  # + Python's own bookkeeping of the call
    assert max(peaks) >= bound // 4, (peaks, bound)      # and the bound is not vacuous


def test_the_scratch_buffer_is_kept_between_calls_and_per_thread():
    """col's column tiles come from a buffer kept between calls (freeing and mapping
    them again each call costs a TLB shootdown across BLAS's threads): a second call
    allocates no tile, another thread gets a buffer of its own, and release() drops it."""
    import threading
    import tracemalloc

    if not compiled.available():
        pytest.skip("Numba is not installed (the fast extra): no col path to test")
    plan = ops.plan_conv_transpose((24, 32), (3, 3), 128, 64, stride=2, crop="same")
    assert gemm._mode(plan) == "col"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 24, 32, 128)).astype(np.float32)
    w = rng.standard_normal(plan.neutral_kernel_shape).astype(np.float32)
    out = np.empty((2, 48, 64, 64), np.float32)
    workspace.release()
    gemm.conv_transpose(x, w, plan, None, out=out)
    held = workspace.held()
    assert held >= 24 * 32 * 3 * 64 * 4  # at least one kernel row's columns of one item
    tracemalloc.start()
    gemm.conv_transpose(x, w, plan, None, out=out)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < held // 8, (peak, held)
    want = out.copy()
    other = {}

    def run():  # another thread: its own buffer, the same values
        y = np.empty_like(out)
        gemm.conv_transpose(x, w, plan, None, out=y)
        other["held"], other["y"] = workspace.held(), y

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert other["held"] == held and workspace.held() == held
    np.testing.assert_array_equal(other["y"], want)
    workspace.release()
    assert workspace.held() == 0


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("mode, channels", [("rows", 8), ("shift", 32)])
def test_forward_tiles_run_side_by_side_on_narrow_layers(data_format, mode, channels):
    """"rows" and "shift" on a narrow layer with a large output run their tiles on every core
    (each into its own thread's buffer), the values of the reference."""
    if not threads.available():
        pytest.skip("one core, or no threadpoolctl/OpenBLAS: nothing runs side by side")
    geometry = ops.plan_conv((19, 23), (3, 3), channels, 8, padding="same")
    settings = {"rows": dict(ROWS_THREADS_MIN_OUTPUT=0, ROWS_TILE_ELEMENTS=1),
                "shift": dict(SHIFT_THREADS_MIN_OUTPUT=0, SHIFT_TILE_ELEMENTS=1)}[mode]
    settings.update(SIDE_BY_SIDE=True, SIDE_BY_SIDE_IF_IDLE=False)
    with _gemm_settings(**settings):
        assert (gemm._rows_threaded if mode == "rows" else gemm._shift_threaded)(geometry, 3)
        with _threads_calling(workspace, "scratch", meet=2) as (seen, _):
            _check_forced_path(geometry, mode, data_format, seed=9, **settings)
    assert len(set(seen)) == 2


def test_a_growing_scratch_buffer_frees_the_old_one_first():
    """A thread's buffer that must grow is freed before the larger one is allocated: the
    two never coexist (the memory bound counts one tile per thread)."""
    import tracemalloc

    workspace.release()
    tracemalloc.start()
    try:
        workspace.scratch((1 << 18,), np.float32)
        workspace.scratch((1 << 19,), np.float32)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        workspace.release()
    assert (1 << 21) <= peak < (1 << 21) + (1 << 20) - 4096, peak


def _blas_threads() -> list[int]:
    return [get() for get, _ in threads._openblas()]


@contextlib.contextmanager
def _threads_calling(module, name, fail_on_call=None, meet=0):
    """Record the thread (and its CPUs) of every call of ``module.name`` (and raise on call
    number ``fail_on_call``). With ``meet``, the first call on each thread waits (10 s at
    most) until ``meet`` threads have made one: a tile left to one thread fails the test
    instead of passing by chance. Of ``workspace.scratch``, only the kernels' calls (slots
    below ``workspace.MOVED_INPUT``; ops.run takes those around the kernels)."""
    import os
    import threading

    seen, real, cpus = [], getattr(module, name), {}
    barrier = threading.Barrier(meet, timeout=10) if meet else None

    def hooked(*args, **kwargs):
        if module is workspace and (args[2] if len(args) > 2 else kwargs.get("slot", 0)) >= workspace.MOVED_INPUT:
            return real(*args, **kwargs)
        first = threading.get_ident() not in seen
        seen.append(threading.get_ident())
        if hasattr(os, "sched_getaffinity"):
            cpus[threading.get_ident()] = os.sched_getaffinity(0)
        if barrier is not None and first:
            barrier.wait()
        if fail_on_call is not None and len(seen) == fail_on_call:
            raise RuntimeError("a tile failed")
        return real(*args, **kwargs)

    setattr(module, name, hooked)
    try:
        yield seen, cpus
    finally:
        setattr(module, name, real)


#: gemm settings that run every col layer's tiles side by side, in one-row tiles of a few cells
#: (their columns C-contiguous, so that every tile calls compiled.col2im), busy CPUs or not
_COL_SIDE_BY_SIDE = dict(SIDE_BY_SIDE=True, SIDE_BY_SIDE_IF_IDLE=False, COL_THREADS_MIN_COLUMNS=0,
                         COL_THREADS_TILE=4096, COL_THREADS_MIN_ROWS=1, COL_MIN_TILE=1, COL_FEW_CELLS=0)


def _side_by_side_layer():
    if not (compiled.available() and threads.available()):
        pytest.skip("one core, or no Numba/threadpoolctl/OpenBLAS: col's tiles cannot run side by side")
    geometry = ops.plan_conv_transpose((12, 16), (3, 3), 16, 8, stride=2, crop="same")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 12, 16, 16)).astype(np.float32)
    w = rng.standard_normal(geometry.neutral_kernel_shape).astype(np.float32)
    return geometry, x, w


def test_col_tiles_run_side_by_side_and_blas_gets_its_threads_back():
    """Where a layer's kernel is small and its columns many, col's tiles run on every core
    (BLAS on one thread each, each thread pinned to a CPU of its own) with the values of one
    core, and BLAS's thread count and the caller's CPUs are put back after the call, also
    when a tile raises."""
    import os

    geometry, x, w = _side_by_side_layer()
    before = _blas_threads()
    with _gemm_settings(**_COL_SIDE_BY_SIDE):
        assert gemm._mode(geometry) == "col" and gemm._col_threaded(geometry, 4)
        mine = os.sched_getaffinity(0)
        with _threads_calling(compiled, "col2im", meet=2) as (seen, cpus):  # tiles on two threads at once
            fast = gemm.conv_transpose(x, w, geometry)
        assert len(set(seen)) == 2 and len(seen) > 4, seen
        # each thread on a CPU of its own during the call, the caller's own set put back after
        assert all(len(c) == 1 for c in cpus.values()) and len(set.union(*cpus.values())) == 2, cpus
        assert os.sched_getaffinity(0) == mine
        assert _blas_threads() == before
        with _threads_calling(compiled, "col2im", fail_on_call=3), pytest.raises(RuntimeError, match="a tile failed"):
            gemm.conv_transpose(x, w, geometry)
        assert _blas_threads() == before and not threads._ACTIVE and os.sched_getaffinity(0) == mine
    want = ops.run(geometry, x.astype(np.float64), w.astype(np.float64), impl="reference")
    np.testing.assert_allclose(fast, want, rtol=1e-4, atol=1e-4)


def test_col_tiles_keep_to_one_core_where_blas_was_limited_to_one_thread():
    """A user who limited BLAS to one thread (threadpoolctl, OPENBLAS_NUM_THREADS) gets one
    core: the tiles run one after another on the calling thread."""
    from threadpoolctl import threadpool_limits

    geometry, x, w = _side_by_side_layer()
    with _gemm_settings(**_COL_SIDE_BY_SIDE), threadpool_limits(1, "blas"):
        assert not threads.available()
        with _threads_calling(compiled, "col2im") as (seen, _):
            gemm.conv_transpose(x, w, geometry)
        assert set(seen) == {__import__("threading").get_ident()}


def test_col_tiles_side_by_side_from_several_threads_at_once():
    """Calls on several threads at once: each gets the values of one call alone, and BLAS's
    thread count is the one found before the first."""
    from concurrent.futures import ThreadPoolExecutor

    geometry, x, w = _side_by_side_layer()
    before = _blas_threads()
    with _gemm_settings(**_COL_SIDE_BY_SIDE):
        want = gemm.conv_transpose(x, w, geometry)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: gemm.conv_transpose(x, w, geometry), range(16)))
    for got in results:
        np.testing.assert_array_equal(got, want)
    assert _blas_threads() == before and not threads._ACTIVE


@pytest.mark.parametrize("transposed", [False, True])
def test_the_compiled_grouped_path_allocates_nothing_that_grows_with_the_layer(transposed):
    """Depthwise layers run the compiled direct loop: beyond the output, only the cached
    tables (and Python's bookkeeping) - against the 12 MB of input and output here - and,
    forward on 2-D data (row by row), one output row's sums per core, which the stated
    temporaries count."""
    import tracemalloc

    plan = (ops.plan_conv_transpose((48, 64), (3, 3), 64, 64, stride=2, crop="same", groups=64) if transposed
            else ops.plan_conv((96, 128), (3, 3), 64, 64, padding="same", groups=64))
    assert gemm._mode(plan) == "grouped"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2,) + plan.input_spatial + (64,)).astype(np.float32)
    w = rng.standard_normal(plan.neutral_kernel_shape).astype(np.float32)
    out = np.empty((2,) + plan.output_spatial + (64,), np.float32)
    compute = gemm.conv_transpose if transposed else gemm.conv
    compute(x, w, plan, None, out=out)
    tracemalloc.start()
    compute(x, w, plan, None, out=out)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rows = 0 if transposed else threads.workers() * 128 * 64 * 4
    assert peak <= 65536 + rows, peak
    assert peak <= gemm.temporary_elements(plan, 2) * 4 + 65536



def test_plans_are_cached_only_for_plain_arguments():
    """A plan is made once per plain shape and arguments; an argument that merely compares
    equal to a cached one (2.0, True, a list) is read afresh, so refusals still refuse."""
    plan = ops.plan_conv_transpose
    first = plan((8, 8), (3, 3), 1024, 512, stride=2, crop="same")
    assert plan((8, 8), (3, 3), 1024, 512, stride=2, crop="same") is first
    assert plan([8, 8], (3, 3), 1024, 512, stride=[2, 2], crop="same") == first
    for stride in (2.0, (2, 2.0), True):
        with pytest.raises(TconvError) as info:
            plan((8, 8), (3, 3), 1024, 512, stride=stride, crop="same")
        assert info.value.argument == "stride"
    with pytest.raises(TconvError):  # a refusal is not cached as a result either
        ops.plan_conv((2, 2), (3, 3), 1, 1)
    with pytest.raises(TconvError):
        ops.plan_conv((2, 2), (3, 3), 1, 1)


def test_gemm_settings_name_every_setting_of_the_module():
    """Caches of paths, tiles and temporaries key on gemm.settings(): a module setting
    missing from it would leave a stale entry when a test or a user changes it."""
    import re

    names = {name for name in vars(gemm) if re.fullmatch(r"[A-Z][A-Z0-9_]*", name)}
    assert names and names <= set(gemm.settings.__code__.co_names)


def test_a_call_like_one_that_passed_its_checks_is_still_checked_where_it_differs():
    """ops remembers, per call signature, the plan and checks a call passed
    (``ops._PLANNED``, ``ops._PREPARED``). A later call takes that shortcut only where
    everything its checks read is the same: arguments equal but not plain (2.0, True,
    np.int64, a list) are read afresh, a budget lowered since refuses, another dtype,
    layout, bias or kernel order is prepared afresh, and a trace of plans still records."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 5, 6, 4)).astype(np.float32)
    w = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)
    b = rng.standard_normal(2).astype(np.float32)
    expected = ops.run(ops.plan_conv_transpose((5, 6), (3, 3), 4, 2, stride=2, crop="same"), x, w, b,
                       impl="reference")
    for _ in range(2):  # the second call takes the shortcut
        np.testing.assert_allclose(tconv.conv_transpose(x, w, b, stride=2, crop="same"), expected, rtol=1e-5,
                                   atol=1e-5)
    assert any(key[0] == "conv_transpose" and key[1] == x.shape for key in ops._PLANNED)
    prepared = len(ops._PREPARED)
    with _gemm_settings(MODE="per_tap"):  # other settings: prepared afresh
        np.testing.assert_allclose(tconv.conv_transpose(x, w, b, stride=2, crop="same"), expected, rtol=1e-5,
                                   atol=1e-5)
        assert len(ops._PREPARED) == prepared + 1 or len(ops._PREPARED) == 1
        assert {p.kernels.mode for p in ops._PREPARED.values() if p.kernels is not None} >= {"per_tap"}
    for stride in (2.0, (2, 2.0), True):
        with pytest.raises(TconvError) as info:
            tconv.conv_transpose(x, w, b, stride=stride, crop="same")
        assert info.value.argument == "stride"
    for stride in (np.int64(2), [2, 2]):  # read afresh, and accepted
        np.testing.assert_allclose(tconv.conv_transpose(x, w, b, stride=stride, crop="same"), expected,
                                   rtol=1e-5, atol=1e-5)
    with pytest.raises(TconvError) as info:
        tconv.conv_transpose(x, w, b, stride=2, crop="same", data_format=np.str_("channels_lost"))
    assert info.value.argument == "data_format"
    with budget.memory_budget(1000), pytest.raises(TconvError, match="memory budget") as info:
        tconv.conv_transpose(x, w, b, stride=2, crop="same")
    assert info.value.argument == "output"
    y64 = tconv.conv_transpose(x.astype(np.float64), w, b, stride=2, crop="same")
    assert y64.dtype == np.float64
    np.testing.assert_allclose(y64, expected, rtol=1e-5, atol=1e-5)
    w_strided = np.asfortranarray(w)  # the same shape, another order
    np.testing.assert_allclose(tconv.conv_transpose(x, w_strided, b, stride=2, crop="same"), expected,
                               rtol=1e-5, atol=1e-5)
    first = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    for _ in range(2):
        y = tconv.conv_transpose(first, w, b, stride=2, crop="same", data_format="channels_first")
        np.testing.assert_allclose(np.moveaxis(y, 1, -1), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(TconvError) as info:
        tconv.conv_transpose(x, w, rng.standard_normal(3), stride=2, crop="same")
    assert info.value.argument == "bias"
    with ops.planning() as plans:
        assert tconv.conv_transpose(x, w, b, stride=2, crop="same").shape == expected.shape
    assert len(plans) == 1 and plans[0][0].output_spatial == (10, 12)
    geometry = ops.plan_conv((5, 6), (3, 3), 4, 2, padding="same")
    wf = np.ascontiguousarray(np.swapaxes(w, -1, -2))
    for _ in range(2):
        np.testing.assert_allclose(tconv.conv(x, wf, padding="same"), ops.run(geometry, x, wf, impl="reference"),
                                   rtol=1e-5, atol=1e-5)
    with pytest.raises(TconvError) as info:
        tconv.conv(x, wf, padding="same", dilation=1.0)
    assert info.value.argument == "dilation"


@pytest.mark.parametrize("transposed", [False, True])
def test_tap_tables_take_strides_past_int64(transposed):
    """A stride past int64 reaches at most one cell per tap: the compiled paths' tables
    (built for im2col, col, grouped) hold it without NumPy's OverflowError (found by the long
    fuzz profile: a forward 1x1 layer of stride 2**63)."""
    x = np.array([[[0.125]]], np.float32)
    w = np.array([[[0.5]]], np.float32)
    geometry = (ops.plan_conv_transpose((1,), (1,), 1, 1, stride=2**63) if transposed
                else ops.plan_conv((1,), (1,), 1, 1, stride=2**63))
    assert gemm._col_tables(geometry) is not None
    for mode in ("col", "im2col", None):
        with _gemm_settings(MODE=mode):
            np.testing.assert_array_equal(ops.run(geometry, x, w), [[[0.0625]]])


def test_col_tiles_side_by_side_in_a_forked_child():
    """A child forked after a call has none of the parent's helper threads: its own call
    still runs side by side (a new pool) and finishes, with the parent's values."""
    import multiprocessing

    geometry, x, w = _side_by_side_layer()
    with _gemm_settings(**_COL_SIDE_BY_SIDE):
        want = gemm.conv_transpose(x, w, geometry)  # the parent's pool now has its helper
        context = multiprocessing.get_context("fork")
        with context.Pool(1) as pool:
            got = pool.apply_async(_side_by_side_in_child, (geometry, x, w)).get(timeout=60)
    np.testing.assert_array_equal(got, want)


def _side_by_side_in_child(geometry, x, w):
    with _gemm_settings(**_COL_SIDE_BY_SIDE):
        assert threads.available()
        with _threads_calling(compiled, "col2im", meet=2):
            return gemm.conv_transpose(x, w, geometry)


def test_only_transposed_layers_take_col_side_by_side():
    """col's side-by-side rule is col's: a forward layer of the same sizes (im2col shares
    col's tile budget) never takes it, so its tiles are those of one core."""
    forward = ops.plan_conv((96, 128), (3, 3), 3, 64, padding="same")
    transposed = ops.plan_conv_transpose((48, 64), (3, 3), 64, 32, stride=2, crop="same")
    with _gemm_settings(SIDE_BY_SIDE=False):
        assert not gemm._col_threaded(transposed, 8)
    with _gemm_settings(SIDE_BY_SIDE=True):
        assert not gemm._col_threaded(forward, 8)
        assert gemm._col_threaded(transposed, 8) == threads.available()


def test_idle_counts_this_processs_other_running_threads(monkeypatch, tmp_path):
    """threads.idle reads the state of each of this process's threads but the caller's
    (/proc/self/task/<tid>/stat, the state after the name's closing parenthesis): helpers go
    side by side only onto CPUs none of them holds; where the states cannot be read, or the
    process has more than TASKS_MAX threads (each read costs), never."""
    import threading

    me = str(threading.get_native_id())
    monkeypatch.setattr(threads, "_CORES", 2)

    def tasks(states: dict) -> str:
        folder = tmp_path / f"tasks{len(list(tmp_path.iterdir()))}"
        for tid, (name, state) in states.items():
            (folder / tid).mkdir(parents=True)
            (folder / tid / "stat").write_text(f"{tid} ({name}) {state} 1 2 3 4 5\n")
        return str(folder)

    for states, helpers, expected in [
            ({me: ("python", "R"), "7": ("python", "S")}, 1, True),
            ({me: ("python", "R"), "7": ("python", "R")}, 1, False),  # OpenBLAS's worker, spinning
            ({me: ("python", "R"), "7": ("python", "R")}, 0, True),
            ({me: ("python", "R"), "7": ("a) R (b", "S"), "8": ("x", "D")}, 1, True),  # a name holding ") R"
            ({me: ("python", "R"), "7": ("python", "S")}, 2, False),  # two helpers, one other CPU
            ({me: ("python", "R"), **{str(10 + i): ("python", "S") for i in range(threads.TASKS_MAX)}}, 1, False),
            ({me: ("python", "R"), **{str(10 + i): ("python", "S") for i in range(threads.TASKS_MAX - 1)}}, 1, True),
            (None, 1, False)]:
        monkeypatch.setattr(threads, "TASKS", tasks(states) if states else str(tmp_path / "absent"))
        threads._forget_tasks()
        try:
            assert threads.idle(helpers) is expected, (states, helpers)
        finally:
            threads._forget_tasks()


def test_running_sees_a_thread_of_this_process_while_it_runs(monkeypatch):
    """The states are live: a thread spinning beside the caller is counted while it runs,
    and no longer once it has stopped."""
    import os
    import threading
    import time

    if not os.path.isdir(threads.TASKS):
        pytest.skip("no /proc/self/task (not Linux): side by side never goes by it")
    monkeypatch.setattr(threads, "TASKS_MAX", 1 << 16)  # frameworks loaded by other tests bring dozens
    monkeypatch.setattr(threads, "TASKS_RELIST", 0.0)  # list the spinner at once
    stop = threading.Event()
    spinner = threading.Thread(target=lambda: [None for _ in iter(stop.is_set, True)])
    spinner.start()
    try:
        spinning = [threads.running() for _ in range(400)]
    finally:
        stop.set()
        spinner.join()
    after, deadline = [], time.monotonic() + 2
    while time.monotonic() < deadline and (not after or after[-1] >= max(spinning)):
        after.append(threads.running())
        time.sleep(0.01)
    assert max(spinning) >= 1, spinning
    assert min(after) < max(spinning), (spinning, after)


@pytest.mark.parametrize("mode, geometry, batch", [
    ("col", ops.plan_conv_transpose((48, 64), (3, 3), 64, 32, stride=2, crop="same"), 1),  # kernel rows / blocks
    ("col", ops.plan_conv_transpose((12, 16), (3, 3), 256, 128, stride=2, crop="same"), 8),  # whole items
    ("col", ops.plan_conv_transpose((40, 40), (4, 4), 32, 16, stride=2, crop="same"), 2),
    ("col", ops.plan_conv_transpose((8, 8, 8), (3, 3, 3), 32, 16, stride=2, crop="same"), 1),
    ("rows", ops.plan_conv((96, 128), (3, 3), 16, 32, padding="same"), 1),
    ("im2col", ops.plan_conv((96, 128), (3, 3), 3, 32, padding="same"), 1),
    ("im2col", ops.plan_conv((48, 64), (3, 3), 3, 32, padding="same"), 3),
    ("shift", ops.plan_conv((96, 128), (3, 3), 32, 32, padding="same"), 2)])
def test_side_by_side_or_not_gives_the_same_bits(mode, geometry, batch):
    """Whether a call finds a CPU idle decides how its tiles run, never its values: side by
    side and one after another (differently cut tiles, one BLAS thread or two) give the same
    bits, so a result does not depend on the machine's load."""
    if not threads.available():
        pytest.skip("one core, or no threadpoolctl/OpenBLAS: nothing runs side by side")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((batch,) + geometry.input_spatial + (geometry.input_channels,)).astype(np.float32)
    w = rng.standard_normal(geometry.neutral_kernel_shape).astype(np.float32)
    b = rng.standard_normal(geometry.output_channels).astype(np.float32)
    forced = dict(COL_THREADS_MIN_COLUMNS=0, ROWS_THREADS_MIN_OUTPUT=0, SHIFT_THREADS_MIN_OUTPUT=0,
                  IM2COL_THREADS_MIN_OUTPUT=0, MODE=mode)
    results = []
    for idle in (True, False):
        with _gemm_settings(SIDE_BY_SIDE=True, SIDE_BY_SIDE_IF_IDLE=True, **forced), \
                _replaced(threads, "idle", lambda helpers, idle=idle: idle):
            assert gemm._mode(geometry) == mode
            with _threads_calling(workspace, "scratch", meet=2 if idle else 0) as (seen, _):
                results.append(ops.run(geometry, x, w, b, impl="gemm"))
            assert len(set(seen)) == (2 if idle else 1)
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("idle", [True, False])
def test_col_tiles_go_side_by_side_only_onto_idle_cpus(monkeypatch, idle):
    """With SIDE_BY_SIDE_IF_IDLE (the default), a layer that takes col side by side runs its
    side-by-side tiles on two threads where threads.idle says the other CPU is free, and
    else the tiles of one core, one after another on the calling thread; same values."""
    import threading

    geometry, x, w = _side_by_side_layer()
    asked = []
    monkeypatch.setattr(threads, "idle", lambda helpers: asked.append(helpers) or idle)
    with _gemm_settings(**dict(_COL_SIDE_BY_SIDE, SIDE_BY_SIDE_IF_IDLE=True)):
        threaded, tiles = gemm._col_plan(geometry, 4, gemm.settings())
        assert threaded is not None and len(threaded) > len(tiles)
        with _threads_calling(compiled, "col2im", meet=2 if idle else 0) as (seen, _):
            got = gemm.conv_transpose(x, w, geometry)
    assert asked == [threads.workers() - 1]
    if idle:
        assert len(set(seen)) == 2 and len(seen) == len(threaded)
    else:
        assert set(seen) == {threading.get_ident()} and len(seen) == len(tiles)
    np.testing.assert_allclose(got, ops.run(geometry, x, w, impl="reference"), rtol=1e-4, atol=1e-4)


def test_side_by_side_places_the_caller_where_it_runs_and_helpers_on_the_next_cpus(monkeypatch):
    """Pinning starts from the CPU the caller runs on (processes side by side keep to the
    CPUs the scheduler spread them over), helpers on the next ones of its set, in turn."""
    monkeypatch.setattr(threads, "_sched_getcpu", lambda: (lambda: 6))
    assert threads._placement((0, 2, 4, 6), 3) == [6, 0, 2]
    monkeypatch.setattr(threads, "_sched_getcpu", lambda: (lambda: 5))  # not in the set
    assert threads._placement((0, 2, 4, 6), 2) == [0, 2]
    monkeypatch.setattr(threads, "_sched_getcpu", lambda: None)  # no sched_getcpu
    assert threads._placement((1, 3), 2) == [1, 3]
