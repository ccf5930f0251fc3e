"""The loops NumPy cannot run fast, compiled with Numba.

The "col" path of :mod:`tconv.kernels.gemm` runs a transposed convolution as one wide
matrix product per tile, the input times every tap at once, and then col2im: each output
cell sums the columns of the taps that reach it. In NumPy that sum is one small strided
add per tap and block of cells, which costs more than the product on narrow layers;
compiled, it runs near memory speed, output-stationary (each output cell written once).
The "grouped" path runs grouped layers of a few channels per group (depthwise) as one
direct loop, where NumPy would make a tiny product per group and tap. The backward pass
of a transposed convolution gathers the output gradient once (im2col) for two products,
the input and the weight gradients (:func:`tconv.kernels.grad.transposed_vjp`). The
forward "rows" path gathers its rows with :func:`im2col` (each gathered row an "output row"
reading one input row) and sums its kernel rows' products down the rows with
:func:`rows_sum`.

Numba is optional (the ``fast`` extra). :func:`available` says whether it imports; without
it :mod:`~tconv.kernels.gemm` keeps to its NumPy paths, which compute the same values.
The kernels know no convolution arithmetic: they read per-axis tables that
:mod:`~tconv.kernels.gemm` builds from :meth:`tconv.geometry.AxisGeometry.tap_span`
(per output cell, the pairs (tap, input cell) that reach it), on three spatial axes
always (rank 1 and 2 arrive with unit axes appended). :func:`col2im` reads the first
axis's pairs per row and the last two axes' pairs merged per cell (``gemm._col_pairs``:
one index per pair instead of three tables and a six-axis index, 1.3-1.5x faster on layers
of few channels); :func:`im2col` reads those merged pairs joined into runs of adjacent
cells and taps (``gemm._col_runs``: a window's taps along the last axis, one copy each);
:func:`col2im_strided` and :func:`im2col_strided` keep the per-axis tables for the arrays
whose cells do not merge (the transposed product of a tile of few cells, a source of
uneven strides), and :func:`col2im_1d` sums 1-D data, where a row is one cell. The merged
and per-axis kernels add the same columns in the same order: their results are equal bit
for bit (im2col and im2col_strided copy, so theirs are too).
"""

from __future__ import annotations

import functools
import types

#: set False to run the NumPy paths even where Numba is installed (tests, comparisons)
ENABLED = True


@functools.lru_cache(maxsize=1)
def _kernels() -> types.SimpleNamespace | None:
    """The compiled loops by name, and Numba's ``version``; None without Numba."""
    try:
        import numba
    except ImportError:
        return None
    import numpy as np

    def jit(function):
        try:  # compiled once per machine, cached beside this file or in the user's cache
            return numba.njit(cache=True, nogil=True)(function)
        except RuntimeError:  # no writable cache location: compile per process
            return numba.njit(nogil=True)(function)

    @jit
    def _row_pairs(o0, count0, tap0, cell0, k0_first, k_rows, j_first, rows, cells):
        """Output row ``o0``'s pairs among this tile's kernel rows ``k0_first ..
        k0_first + k_rows``: stores their kernel rows (from the tile's first) and input rows
        (from ``j_first``) in ``rows`` and ``cells``; returns how many, and what the tile
        does to the row: 1 write it, 2 add to it, 0 skip it.

        Tiles of kernel rows arrive in ascending order, so a row is written (from the bias)
        by the first tile whose kernel rows reach it, added to by later ones, and skipped by
        the rest: a strided layer's kernel rows each reach one phase of the output rows, so
        each tile touches only its phase. Rows no tap reaches get the bias in the tile of
        kernel row 0."""
        reached, earlier, pairs = False, False, 0  # by this tile's kernel rows, by an earlier tile's
        for m0 in range(count0[o0]):
            k0 = tap0[o0, m0] - k0_first
            if k0 < 0:
                earlier = True
            elif k0 < k_rows:
                reached = True
                rows[pairs] = k0
                cells[pairs] = cell0[o0, m0] - j_first
                pairs += 1
        if reached:
            return pairs, 2 if earlier else 1
        return pairs, 1 if k0_first == 0 and count0[o0] == 0 else 0

    @jit
    def col2im(col, out, count0, tap0, cell0, count, offset, k_rows, row_taps, n0, r0, r1, k0_first, j_first, bias):
        """Output-stationary, on columns that lie C-contiguous: ``out[n0 + b, o0, q, :]`` (rows
        ``r0 <= o0 < r1``; ``q`` a cell of the other two axes, flattened) gets the sum of
        ``col[b, j0 - j_first, k * row_taps + offset[q, m], :]`` over its pairs along the
        first axis (kernel row ``k0_first + k``, ``k < k_rows``, input row ``j0``;
        :func:`_row_pairs`) and its ``count[q]`` pairs on the other two (``offset``: their
        input cell and tap in one index of a kernel row's columns). A cell's first column
        writes ``bias + column``, later ones add in place (an accumulator per cell loaded
        and stored back was 20-25% slower). One merged index per pair instead of three
        tables read and a six-axis index: 1.3-1.5x faster than :func:`col2im_strided` on
        the U-Net's narrow layers, the same sums in the same order."""
        n, _, _, c_n = col.shape
        cells_n = out.shape[2]
        rows = np.empty(tap0.shape[1], np.int64)
        cells = np.empty(tap0.shape[1], np.int64)
        for o0 in range(r0, r1):
            pairs, action = _row_pairs(o0, count0, tap0, cell0, k0_first, k_rows, j_first, rows, cells)
            if action == 0:
                continue
            for b in range(n):
                for q in range(cells_n):
                    first = action == 1  # the first column read writes bias + it, later ones add
                    for p in range(pairs):
                        j0, base = cells[p], rows[p] * row_taps
                        for m in range(count[q]):
                            s = base + offset[q, m]
                            if first:
                                for c in range(c_n):
                                    out[n0 + b, o0, q, c] = bias[c] + col[b, j0, s, c]
                                first = False
                            else:
                                for c in range(c_n):
                                    out[n0 + b, o0, q, c] += col[b, j0, s, c]
                    if first:  # no tap reaches the cell
                        for c in range(c_n):
                            out[n0 + b, o0, q, c] = bias[c]

    @jit
    def col2im_1d(col, out, count, tap, cell, n0, r0, r1, j_first, bias):
        """:func:`col2im` on 1-D data, where a row is one cell: ``out[n0 + b, o, :]``
        (``r0 <= o < r1``) = ``bias`` + the sum of ``col[b, cell[o, m] - j_first, tap[o, m], :]``
        for ``m < count[o]``, columns of any strides. The tiles of 1-D data are disjoint
        blocks of output cells (every tap at once), so each cell is written once: the
        per-row bookkeeping of :func:`_row_pairs` would cost more than the cell's sum."""
        n, _, _, c_n = col.shape
        for b in range(n):
            for o in range(r0, r1):
                first = True
                for m in range(count[o]):
                    j, t = cell[o, m] - j_first, tap[o, m]
                    if first:
                        for c in range(c_n):
                            out[n0 + b, o, c] = bias[c] + col[b, j, t, c]
                        first = False
                    else:
                        for c in range(c_n):
                            out[n0 + b, o, c] += col[b, j, t, c]
                if first:  # no tap reaches the cell
                    for c in range(c_n):
                        out[n0 + b, o, c] = bias[c]

    @jit
    def col2im_strided(col, out, count0, tap0, cell0, count1, tap1, cell1, count2, tap2, cell2,
                       k1n, k2n, n0, r0, r1, k0_first, j_first, bias):
        """:func:`col2im` on columns of any strides (the transposed product of a tile of few
        cells), six axes and the tables of each axis: ``out[n0 + b, o0, o1, o2, :]`` gets
        the sum of ``col[b, j0 - j_first, j1, j2, t, :]`` over its taps, the axis-``a``
        pairs ``(tap_a[o, m], cell_a[o, m])`` for ``m < count_a[o]``, ``t`` in C order over
        three axes (``k1n`` and ``k2n`` taps on the last two); the rows as :func:`_row_pairs`
        says. The same sums in the same order as :func:`col2im`."""
        n, _, _, _, taps, c_n = col.shape
        o1n, o2n = out.shape[2], out.shape[3]
        rows = np.empty(tap0.shape[1], np.int64)
        cells = np.empty(tap0.shape[1], np.int64)
        for o0 in range(r0, r1):
            pairs, action = _row_pairs(o0, count0, tap0, cell0, k0_first, taps // (k1n * k2n), j_first, rows, cells)
            if action == 0:
                continue
            for b in range(n):
                for o1 in range(o1n):
                    for o2 in range(o2n):
                        dst = out[n0 + b, o0, o1, o2]
                        first = action == 1
                        for p in range(pairs):
                            j0 = cells[p]
                            for m1 in range(count1[o1]):
                                j1 = cell1[o1, m1]
                                t1 = (rows[p] * k1n + tap1[o1, m1]) * k2n
                                for m2 in range(count2[o2]):
                                    src = col[b, j0, j1, cell2[o2, m2], t1 + tap2[o2, m2]]
                                    if first:
                                        for c in range(c_n):
                                            dst[c] = bias[c] + src[c]
                                        first = False
                                    else:
                                        for c in range(c_n):
                                            dst[c] += src[c]
                        if first:
                            for c in range(c_n):
                                dst[c] = bias[c]

    @jit
    def grouped(x, out, count0, tap0, cell0, count1, tap1, cell1, count2, tap2, cell2,
                k1n, k2n, w, bias):
        """Direct, for groups of few channels: ``out[b, o, g*d + i]`` = bias + the sum over
        the taps reaching ``o`` from ``x[b, j]`` of ``x[b, j, g*s + c] * w[t, g, c, i]``
        (``s``, ``d``: channels per group in ``x`` and ``out``; ``w`` C-contiguous). Where a
        group has at least 4 output channels, the loop over them is innermost (contiguous in
        ``w`` and the accumulator): a transposed 16 -> 128 in 4 groups (32 a group) 35.6 -> 3.1
        ms at batch 4 on 40x40, against the loop over groups innermost that depthwise layers keep,
        one vector loop over their channels."""
        n, o0n, o1n, o2n, _ = out.shape
        g_n, s_n, d_n = w.shape[1], w.shape[2], w.shape[3]
        acc = bias.copy()
        for b in range(n):
            for o0 in range(o0n):
                for o1 in range(o1n):
                    for o2 in range(o2n):
                        for c in range(acc.shape[0]):
                            acc[c] = bias[c]
                        for m0 in range(count0[o0]):
                            j0 = cell0[o0, m0]
                            t0 = tap0[o0, m0] * k1n
                            for m1 in range(count1[o1]):
                                j1 = cell1[o1, m1]
                                t1 = (t0 + tap1[o1, m1]) * k2n
                                for m2 in range(count2[o2]):
                                    j2 = cell2[o2, m2]
                                    t = t1 + tap2[o2, m2]
                                    src = x[b, j0, j1, j2]
                                    if d_n >= 4:  # the group's outputs innermost
                                        for g in range(g_n):
                                            for c in range(s_n):
                                                v = src[g * s_n + c]
                                                wc = w[t, g, c]
                                                for i in range(d_n):
                                                    acc[g * d_n + i] += v * wc[i]
                                        continue
                                    for i in range(d_n):  # the groups innermost (depthwise: one loop)
                                        for c in range(s_n):
                                            for g in range(g_n):
                                                acc[g * d_n + i] += src[g * s_n + c] * w[t, g, c, i]
                        for c in range(acc.shape[0]):
                            out[b, o0, o1, o2, c] = acc[c]

    @jit
    def im2col(src, cols, count0, tap0, cell0, count, cell, tap, length, row_taps, c_n, c_stride, c0, n0, r0):
        """``cols[b, r, q]`` (a cell's ``taps * c_n`` values, flat): for each pair of output
        cell ``(r0 + r, q)`` along the first axis (tap ``k0``, input row ``j0`` of its tables)
        and each of the cell's runs along the others, ``m < count[q]``, the channels ``c0 ..
        c0 + c_n`` of the ``length[q, m]`` input cells from ``cell[q, m]`` of row ``j0``,
        copied to the taps from ``k0 * row_taps + tap[q, m]``; zeros for the taps that read
        padding. The source is ``(N, rows, cells * c_stride)``: a row's cells and their
        channels one run in memory, so where the columns take every channel (``c_n ==
        c_stride``) a run of cells is one copy (a window's taps along the last axis, whole:
        the 7 taps x 3 channels of a stem, where a copy per tap moves 3 values); a group's
        channels (grouped layers) are a copy per cell. Indices unsigned: the loop over a
        run's values then compiles to vector copies (signed, each index is checked for
        wrapping around, and the loop stays scalar: 1.2-2x slower)."""
        n, rows, cells_n, width = cols.shape
        taps = width // c_n
        whole = c_n == c_stride
        c_n, c_stride, c0 = np.uint64(c_n), np.uint64(c_stride), np.uint64(c0)
        for b in range(n):
            for r in range(rows):
                o0 = r0 + r
                for q in range(cells_n):
                    dst = cols[b, r, q]
                    reached = 0
                    for m in range(count[q]):
                        reached += length[q, m]
                    if count0[o0] * reached < taps:  # some tap reads padding
                        for i in range(width):
                            dst[i] = 0
                    for m0 in range(count0[o0]):
                        row = src[n0 + b, cell0[o0, m0]]
                        t0 = tap0[o0, m0] * row_taps
                        for m in range(count[q]):
                            d = np.uint64(t0 + tap[q, m]) * c_n
                            s = np.uint64(cell[q, m]) * c_stride + c0
                            if whole:
                                for i in range(np.uint64(length[q, m]) * c_n):
                                    dst[d + i] = row[s + i]
                                continue
                            for _ in range(length[q, m]):
                                for i in range(c_n):
                                    dst[d + i] = row[s + i]
                                d += c_n
                                s += c_stride

    @jit
    def im2col_strided(src, cols, count0, tap0, cell0, count1, tap1, cell1, count2, tap2, cell2,
                       k1n, k2n, n0, r0):
        """:func:`im2col` on a source whose last two axes do not merge, on the per-axis
        tables: ``cols[b, r, o1, o2, t, :]`` = ``src[n0 + b, j0, j1, j2, :]`` for each pair
        (tap ``t``, cell ``j``) of cell ``(r0 + r, o1, o2)``, zeros for the taps without
        one (taps in C order over three axes, ``k1n``, ``k2n`` on the last two)."""
        n, rows, o1n, o2n, taps, c_n = cols.shape
        for b in range(n):
            for r in range(rows):
                o0 = r0 + r
                for o1 in range(o1n):
                    for o2 in range(o2n):
                        if count0[o0] * count1[o1] * count2[o2] < taps:  # some tap reads padding
                            for t in range(taps):
                                for c in range(c_n):
                                    cols[b, r, o1, o2, t, c] = 0
                        for m0 in range(count0[o0]):
                            j0 = cell0[o0, m0]
                            t0 = tap0[o0, m0] * k1n
                            for m1 in range(count1[o1]):
                                j1 = cell1[o1, m1]
                                t1 = (t0 + tap1[o1, m1]) * k2n
                                for m2 in range(count2[o2]):
                                    j2 = cell2[o2, m2]
                                    t = t1 + tap2[o2, m2]
                                    for c in range(c_n):
                                        cols[b, r, o1, o2, t, c] = src[n0 + b, j0, j1, j2, c]

    @jit
    def rows_sum(product, dst, shifts, bias):
        """``dst[r, q, :]`` = ``bias`` + the sum over ``i`` (in order) of ``product[r +
        shifts[i], q, i, :]``: the kernel rows' products of the "rows" path of
        :mod:`~tconv.kernels.gemm`, each read from the gathered row its kernel row reaches,
        added down the rows. The same sums in the same order as the NumPy adds there; an
        accumulator per cell (1.5-1.8x faster than adding into ``dst``, whose strides the
        loop cannot know)."""
        rows, cells, c_n = dst.shape
        acc = np.empty(c_n, dst.dtype)
        for r in range(rows):
            for q in range(cells):
                first = product[r + shifts[0], q, 0]
                for c in range(c_n):
                    acc[c] = bias[c] + first[c]
                for i in range(1, shifts.shape[0]):
                    src = product[r + shifts[i], q, i]
                    for c in range(c_n):
                        acc[c] += src[c]
                cell = dst[r, q]
                for c in range(c_n):
                    cell[c] = acc[c]

    @jit
    def transpose(src, dst):
        """``dst[k, j, i] = src[k, i, j]`` on C-contiguous ``(n, a, b)`` and ``(n, b, a)``:
        channels-first data to channels-last and back, in blocks of 16 x 16 (each block's
        rows read and written while cached). 1.3-2x faster than NumPy's copy through a
        moved axis (8x96x128x32 float32 to channels-first 2.0 against 4.1 ms); other block
        sizes and loop orders measured no faster."""
        n, a, b = src.shape
        for k in range(n):
            for i0 in range(0, a, 16):
                i1 = min(i0 + 16, a)
                for j0 in range(0, b, 16):
                    j1 = min(j0 + 16, b)
                    for j in range(j0, j1):
                        for i in range(i0, i1):
                            dst[k, j, i] = src[k, i, j]

    @jit
    def unmoved(src, dst):
        """``dst[s, b, a] = src[a, b, s]`` on C-contiguous ``(A, B, S)`` and ``(S, B, A)``: a
        kernel in PyTorch's or ONNX's layout, ``(O, I/groups, *spatial)``, to tconv's neutral
        one, ``(*spatial, I/groups, O)``, 16 values of ``a`` at a time (the 16 source rows of
        ``S`` values read while cached, each destination run of 16 written whole): the
        seed's 1024x512x3x3 float32 4.8 ms, against 22-27 through NumPy's copy of the moved
        view (other block sizes and loop orders 5.6-24)."""
        n_a, n_b, n_s = src.shape
        for a0 in range(0, n_a, 16):
            a1 = min(a0 + 16, n_a)
            for b in range(n_b):
                for s in range(n_s):
                    for a in range(a0, a1):
                        dst[s, b, a] = src[a, b, s]

    @jit
    def grouped_permuted(x, out, count0, tap0, cell0, count1, tap1, cell1, count2, tap2, cell2,
                         k1n, k2n, w, bias):
        """:func:`grouped` for many groups of few channels, on an input whose channels are
        permuted groups innermost, ``x[b, j, c, g]`` = the layer's input ``[b, j, g*s + c]``:
        ``out[b, o, g*d + i]`` = ``bias[i, g]`` + the sum over the taps reaching ``o`` from
        ``x[b, j]`` and over ``c`` of ``x[b, j, c, g] * w[t, c, i, g]``, the loop over the
        groups innermost (one vector loop over as many values as groups, where :func:`grouped`
        has one over a group's few outputs); each cell's sums kept ``(d, groups)`` and written
        to its channels ``g*d + i``. ResNeXt's 56x56x128 in 32 groups of 4: 4.8 -> 2.7 ms on
        one thread, against a product per tap and group (accumulate)."""
        n, o0n, o1n, o2n, _ = out.shape
        s_n, d_n, g_n = w.shape[1], w.shape[2], w.shape[3]
        acc = np.empty((d_n, g_n), out.dtype)
        for b in range(n):
            for o0 in range(o0n):
                for o1 in range(o1n):
                    for o2 in range(o2n):
                        for i in range(d_n):
                            for g in range(g_n):
                                acc[i, g] = bias[i, g]
                        for m0 in range(count0[o0]):
                            j0 = cell0[o0, m0]
                            t0 = tap0[o0, m0] * k1n
                            for m1 in range(count1[o1]):
                                j1 = cell1[o1, m1]
                                t1 = (t0 + tap1[o1, m1]) * k2n
                                for m2 in range(count2[o2]):
                                    j2 = cell2[o2, m2]
                                    t = t1 + tap2[o2, m2]
                                    for c in range(s_n):
                                        for i in range(d_n):
                                            for g in range(g_n):
                                                acc[i, g] += x[b, j0, j1, j2, c, g] * w[t, c, i, g]
                        for g in range(g_n):
                            for i in range(d_n):
                                out[b, o0, o1, o2, g * d_n + i] = acc[i, g]

    @jit
    def depthwise_rows(x, out, count0, tap0, cell0, spans, stride, w, bias, r0, r1):
        """A forward depthwise layer on 2-D data (one channel in and out a group), output row
        by output row ``r0 <= o0 < r1``: the row's sums kept ``(cells, C)``, each kernel tap
        ``(k0, k1)`` reaching the row adding ``x[b, j0, j1, :] * w[k0, k1, :]`` to the cells
        ``spans[k1, 0] <= q < spans[k1, 1]`` it reaches, from input cell ``j1 = spans[k1, 2]
        + (q - spans[k1, 0]) * stride`` (:meth:`~tconv.geometry.AxisGeometry.tap_span`): one
        vector loop over the channels per cell and tap, no table walk per cell: 1.2-2x
        :func:`grouped`'s per-cell loop (56x56x128 0.60 -> 0.44 ms, 112x112x32 1.29 -> 0.66,
        thirteenth session)."""
        n, _, q_n, c_n = out.shape
        acc = np.empty((q_n, c_n), out.dtype)
        for b in range(n):
            for o0 in range(r0, r1):
                for q in range(q_n):
                    for c in range(c_n):
                        acc[q, c] = bias[c]
                for m0 in range(count0[o0]):
                    j0, k0 = cell0[o0, m0], tap0[o0, m0]
                    for k1 in range(spans.shape[0]):
                        start, stop, first = spans[k1, 0], spans[k1, 1], spans[k1, 2]
                        wt = w[k0, k1]
                        for q in range(start, stop):
                            src = x[b, j0, first + (q - start) * stride]
                            row = acc[q]
                            for c in range(c_n):
                                row[c] += src[c] * wt[c]
                for q in range(q_n):
                    for c in range(c_n):
                        out[b, o0, q, c] = acc[q, c]

    return types.SimpleNamespace(
        version=numba.__version__, col2im=col2im, col2im_strided=col2im_strided, col2im_1d=col2im_1d,
        grouped=grouped, grouped_permuted=grouped_permuted, depthwise_rows=depthwise_rows, im2col=im2col,
        im2col_strided=im2col_strided, rows_sum=rows_sum, transpose=transpose, unmoved=unmoved)


def available() -> bool:
    """Whether the compiled loops can run here (Numba imports and :data:`ENABLED`)."""
    return ENABLED and _kernels() is not None


def version() -> str | None:
    """Numba's version, or None where it is not installed."""
    kernels = _kernels()
    return None if kernels is None else kernels.version


def col2im(*args) -> None:
    _kernels().col2im(*args)


def col2im_strided(*args) -> None:
    _kernels().col2im_strided(*args)


def col2im_1d(*args) -> None:
    _kernels().col2im_1d(*args)


def grouped(*args) -> None:
    _kernels().grouped(*args)


def grouped_permuted(*args) -> None:
    _kernels().grouped_permuted(*args)


def depthwise_rows(*args) -> None:
    _kernels().depthwise_rows(*args)


def im2col(*args) -> None:
    _kernels().im2col(*args)


def im2col_strided(*args) -> None:
    _kernels().im2col_strided(*args)


def rows_sum(*args) -> None:
    _kernels().rows_sum(*args)


def transpose(*args) -> None:
    _kernels().transpose(*args)


def unmoved(*args) -> None:
    _kernels().unmoved(*args)
