"""Vectorised kernels on BLAS: output tiles, each one cache-sized matrix product, no loop over pixels.

Both directions are computed *output-stationary*: the output is cut into disjoint tiles
(rows of the first spatial axis, or whole batch items), and each tile is produced whole
from the source cells it reads, then stored once (bias added, in either data format).

Forward convolution: each kernel tap reads a strided block of the input per tile.

Transposed convolution, the phase (sub-pixel) decomposition: output cell ``o`` of an
axis with stride ``s`` is reached only by the taps whose offset has ``o``'s residue mod
``s``, and those read the input *without* a stride. So the output splits into ``s^d``
interleaved lattices (phases), each a dense convolution of the input with its share of
the taps; no zero is inserted and no product is formed that a crop throws away. The
spans come from :meth:`~tconv.geometry.AxisGeometry.tap_span`, the same ones the forward
kernel and the weight gradient use, so the three are one bilinear form read three ways.

Each tile's matrix products take one of nine shapes (:func:`_mode` picks, per shape):

* **col** (transposed convolutions, where Numba is installed; grouped ones with at least
  8 input channels per group, a product per group): one wide product
  of the input with every tap at once, ``(cells, C_in) @ (C_in, taps * C_out)`` with the
  kernel as it lies, then col2im: each output cell sums the columns of
  the taps that reach it, in a compiled loop (:mod:`tconv.kernels.compiled`), bias fused,
  each cell written once. BLAS runs at its best on the wide product, and nothing is
  multiplied by an inserted zero (the columns are exactly the multiply-adds needed).
  Where a whole item's columns exceed the tile, it runs kernel row by kernel row (later
  rows add into the output) or by blocks of output rows (recomputing a few input rows;
  always on 1-D data, where a row is one cell).
* **im2col** (forward convolutions without groups whose columns per output cell, taps x
  C_in, are at most :data:`IM2COL_MAX_COLUMNS` times C_out: first layers on RGB, where
  Numba is installed): the taps' source cells gathered side by side (compiled), then one
  product ``(cells, taps * C_in) @ (taps * C_in, C_out)`` with the kernel as it lies,
  straight into the output. With few input channels the other paths make nine products
  of a tiny inner dimension; here BLAS sums over every tap at once. Where C_in is as large
  as C_out, the columns are nine times the output and the gather costs what it saves.
* **rows** (forward convolutions on 2-D data, unit stride down the rows, kernels of at
  most :data:`ROWS_MAX_KERNEL` elements): the input rows a step of output rows reads are
  gathered once, each row's kernel-width taps side by side (``(rows, width, kw * C_in)``,
  compiled where Numba is installed); one product of them with every kernel row at once,
  ``(cells, kw * C_in) @ (kw * C_in, kh * C_out)``; then each output row sums the products
  of the kernel rows that reach it (compiled, bias first). The next step keeps the products
  of the gathered rows it shares. On 3x3 32 -> 32 that product ran 1.4x faster than
  im2col's ``(cells, 288) @ (288, 32)`` or nine per tap.
* **shift** (forward convolutions of unit strides on 1-D and 2-D data, at least 32 input
  channels): per tap, one product of the input rows it reads, whole rows as they lie
  ``(cells, C_in) @ (C_in, C_out)``, then its cells shifted into place: the covering tap
  writes the tile (in place), the others add their part. No gather and no padded copy: the
  temporaries are one product (at most the output), and it ran faster than rows, flat and
  per tap on the U-Net's wider layers (the edge column or two of each row's product is
  computed and dropped).
* **accumulate** (forward convolutions of unit strides, 1-D to 3-D, whose output rows (3-D:
  planes) are as large as their input rows, or made so: the input extended by zeros, or the
  output computed into a frame (:func:`_accumulate_geometry`); where NumPy's BLAS can be
  called directly, :mod:`tconv.kernels.blas`): per item and tap, one product of the input's cells as they
  lie, ``(cells, C_in) @ (C_in, C_out)``, added by BLAS straight into the output's cells
  (GEMM's ``beta = 1``): the rows flattened into one run, so a tap's cells lie a fixed
  offset from the cells they read; the few cells of that run whose column the tap does not
  reach read the neighbouring row's edge, so their values are kept aside and put back.
  No gather, no scratch, no second pass over the output: 15-35% faster than rows or shift
  on the U-Net's narrow layers. Transposed convolutions of unit strides run as the forward
  convolution they mirror, and grouped ones (at least :data:`ACCUMULATE_MIN_GROUP_CHANNELS`
  input channels a group) as a product per tap and group, BLAS reading and writing each
  group's channels in place: 2-13x faster than concat or the direct loop there.
* **flat**: where every tap reads without a stride (every transposed pass; forward
  convolutions of stride 1), the source is copied once into a zero-padded frame and
  flattened, so each tap's operand for a tile is one contiguous slice; one product per
  tap, the cells of the frame beyond the output computed and dropped. Chosen where that
  frame adds at most 10% of extra cells (large layers).
* **per tap**: one product per tap on its (clipped) source block, added into the tile,
  with the kernel tap as it lies in memory (BLAS reads it transposed): no gather of the
  taps side by side and no weight copy, which matters for wide layers with large kernels.
* **grouped** (grouped convolutions of fewer than 8 input channels per group that
  accumulate does not take, depthwise among them, both directions, where Numba is
  installed): no product at all, a compiled direct loop over the output cells and the taps
  reaching them.
* **concat** (the other grouped convolutions): the taps gathered side by side,
  ``(cells, taps * C) @ (taps * C, C')`` per group, one batched product.

The phase decomposition (flat, per tap) was measured against "GEMM then col2im" on the
benchmark layers: with col2im as NumPy strided adds, per tap or flat won on all of them
(the adds cost more than the product on narrow layers); with the compiled col2im, col wins
on every 2-D and 3-D transposed layer, by 10-35% (docs/benchmarks.md). On 1-D, with a
col2im of its own (blocks of cells, each written once), col is 2-28% faster than per tap
on most layers measured (the benchmark's 4096x64->8192x32 0.54 -> 0.45 ms back to back)
and 1-13% slower on single items of kernels of 786k elements and more.

Threads: the tiles run one after another on the calling thread, BLAS parallelising each
product on its own threads. Where :data:`SIDE_BY_SIDE` is set (the default) and, at the
call, every helper finds a CPU free of the process's other threads
(:data:`SIDE_BY_SIDE_IF_IDLE`: a core held by OpenBLAS's spinning worker made it slower in
a network), "col" on layers of small kernels and many columns
(:func:`_col_threaded`), and "rows" and "shift" on narrow layers with a large output
(:func:`_narrow_threaded`) run their tiles (whole items, or blocks of output rows, so that
they write disjoint rows) side by side, one per core, each product on one BLAS thread
(:mod:`tconv.kernels.threads`). For col, each product is followed at once by its col2im:
one core's col2im overlaps the other's product, and the columns are read back while
cached. Measured in process, the same layer again and again, 2 cores: 48x64x64->96x128x32
at batch 8 6.7 -> 5.3 ms, 24x32x128->48x64x64 at batch 8 4.0 -> 3.5, 256x256x64->512x512x32
(k4) 35 -> 31; slower at batch 1 (0.89 -> 1.34 on the 48x64
layer: the finer tiles recompute boundary rows, and two narrow products at once are no
faster than one on two threads) and with large kernels (each tile's product packs the
kernel again on one thread: 6x8x512->12x16x256 at batch 8 3.7 -> 5.5). Elsewhere a pool
of tiles was measured slower on every benchmark workload, and so were col2im's halves on
two threads (the other core is held by OpenBLAS's thread, spinning after the product) and
Numba's parallel loop (its threads and OpenBLAS's contending for the two cores).

Memory: a tile's operands and product hold about :data:`TILE_ELEMENTS` elements (col and
im2col: its columns, at most :data:`COL_TILE_PER_OUTPUT` times the output; shift: one
product, at most the output), never less than one row of one batch item, one tile per core
where tiles run side by side; besides the output, the only allocation that grows with the
problem is the padded source copy of the flat path (about the input's size), the input
copy of shift where the input is not C-contiguous (channels-first), or the weight matrix of
concat (the kernel's): :func:`temporary_elements` states the bound the memory budget checks.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np

from tconv.errors import TconvError
from tconv.geometry import Geometry
from tconv.kernels import blas, compiled, threads, workspace

#: elements of one tile's gather plus product (float32: 1 MiB), sized to stay in cache
TILE_ELEMENTS = 1 << 18
#: large layers take tiles of up to a quarter of their output, at most this many elements
#: (float32: 16 MiB)
MAX_TILE_ELEMENTS = 1 << 22
#: a tile has at least this many cells where the pass has them: fewer make the product
#: re-read its weights for too little work
MIN_TILE_CELLS = 256
#: layers whose taps read without a stride run on the flattened padded source ("flat")
#: when its frame computes at most this many cells per cell kept, or at most
#: FLAT_NARROW_MAX_WASTE where the source has at most FLAT_NARROW_CHANNELS channels (per
#: tap copies cost relatively more there; measured on the benchmark layers)
FLAT_MAX_WASTE = 1.1
FLAT_NARROW_CHANNELS = 64
FLAT_NARROW_MAX_WASTE = 1.25
#: "col" tiles hold up to COL_TILE_PER_OUTPUT times the output's elements of columns, at
#: least COL_MIN_TILE and at most COL_MAX_TILE (float32: 16 MiB). On the benchmark layers
#: fewer, wider products beat cache-sized ones (1 << 18 to 1 << 22 measured), and tiles of
#: 3x the output would be another 10-20% faster on half of them, but 1.4x keeps the
#: temporaries within 1.5x the output (issue 3's memory target)
COL_TILE_PER_OUTPUT = 1.4
COL_MIN_TILE = 1 << 16
#: grouped layers take col where each group has at least this many input channels: from
#: 8 up col was 1.2-2x faster than concat, at 4 alike, at 1 (depthwise) 4x slower
COL_MIN_GROUP_CHANNELS = 8
#: "col" tiles of at most this many cells compute ``(W @ X.T).T``: OpenBLAS runs that
#: product 20-30% faster than ``X @ W.T`` at 48-64 cells, alike at 192, slower beyond
COL_FEW_CELLS = 128
COL_MAX_TILE = 1 << 22
#: a transposed layer's kernel of at least this many elements lying in PyTorch's and ONNX's
#: layout, ``(C_in, C_out/groups, *k)`` (the torch and onnx dialects hand it over as the
#: neutral layout's moved view), is multiplied as it lies (:func:`_col_lies_run`) instead of
#: being copied to the neutral layout first: the copy read one value of 9 per cache line and
#: cost more than the product on large kernels (the seed's 1024x512x3x3 13 ms on the
#: AMD machine). Below it the copy is cheap and the neutral tiles (side by side, merged
#: col2im) faster. Measured through the torch dialect (channels-first, 3x3 stride 2, the
#: two alternating call by call, medians of 21, ms, as it lies against copied):
#: 8x8x1024->512 b1 6.0 / 18.2, b8 29.0 / 38.4; 6x8x512->256 b1 1.27 / 2.21, b8 6.4 / 8.0;
#: 12x16x256->128 (295k) b1 1.00 / 1.24, b8 8.2 / 8.5; 24x32x128->64 (74k) b1 1.40 / 1.34,
#: b8 12.0 / 11.1; 48x64x64->32 (18k) b1 2.5 / 1.75
COL_LIES_MIN_KERNEL = 1 << 17
#: a forward layer whose kernel lies in PyTorch's layout, of at least COL_LIES_MIN_KERNEL
#: elements, is multiplied as it lies (:func:`_im2col_lies_run`) where the kernel holds at
#: least this many times the values the gather copies (batch x output cells x taps x C_in):
#: the copy of the kernel it saves, against the gather in (channel, tap) order it adds.
#: Through the torch dialect, 3x3 'same', in process, alternating, ms, as it lies / the
#: kernel copied (AMD EPYC, 2 cores), by ratio: 6x8x512->512 b1 (10.7) 3.3 / 11.8; 8x8x1024
#: ->512 b1 (8) 6.5 / 21.3; 3x4x512->512 b16 (2.7) 7.8 / 12.1; 12x16x512->256 b1 (1.3) 5.4 /
#: 7.6; 6x8x512->512 b16 (0.67) 28 / 36; 12x16x256->256 b2 (0.67) 4.2 / 4.6; 12x16x128->128
#: b1 (0.67) 0.96 / 0.97; 12x16x256->256 b4 (0.33) 8.3 / 7.3; 24x32x256->256 b1 (0.33) 7.6 /
#: 7.0; 24x32x128->128 b1 (0.17) 2.9 / 2.0
IM2COL_LIES_MIN_RATIO = 0.5
#: col tiles a batch by groups of kernel rows (over blocks of items) only where BLAS packs at
#: most this share of what it packs over blocks of whole items (:func:`_col_item_row_blocks`)
COL_ROW_GROUPS_GAIN = 0.7
#: whether col, rows and shift may run their tiles side by side at all (where the rules below
#: say so, and :data:`SIDE_BY_SIDE_IF_IDLE` at the call)
SIDE_BY_SIDE = True
#: ... only where, at the call, every helper finds a CPU that none of the process's other
#: threads is running on (:func:`tconv.kernels.threads.idle`); else the tiles of one core,
#: one after another on BLAS's threads. A layer that follows any product on OpenBLAS's two
#: threads finds OpenBLAS's worker spinning for work (about 0.1 s after each of its calls),
#: and a helper pinned beside it shares its core: after one 256x256 product on two threads,
#: 12x16x256->24x32x128 at batch 8 took 4.96 ms side by side against 3.88 one tile after
#: another, 48x64x64->96x128x32 7.28 against 6.11, the 3-D layer 3.26 against 1.57, and the
#: course U-Net ran 3-8% slower side by side (seventh session). With the check (eighth
#: session, alternating processes, the benchmark's protocol, four rounds): 12x16x256 b8
#: 3.52-3.88 ms against 3.78-4.09 with side by side off, 24x32x128 b8 4.05-4.42 against
#: 4.32-4.86, 48x64x64 b8 5.25-5.67 against 6.16-6.46; the U-Net alike, every check in it
#: finding OpenBLAS's worker running. Either way the same bits. The check reads each
#: thread's state (a few us), only on layers that may go side by side
SIDE_BY_SIDE_IF_IDLE = True
#: "col" runs its tiles side by side, one per core with BLAS on one thread
#: (:mod:`tconv.kernels.threads`), where a group's kernel has at most COL_THREADS_MAX_KERNEL
#: elements (each tile's product packs it again) and the layer at least
#: COL_THREADS_MIN_COLUMNS elements of columns; each core's tile then holds at most
#: COL_THREADS_TILE elements (float32: 2 MiB), within COL_TILE_PER_OUTPUT times the output
#: over all cores. Measured in the benchmark's protocol (a call after a pause, 2 cores):
#: faster on the U-Net's layers at batch 8 up to 256 -> 128 channels (12x16x256 3.8 against
#: 4.0-4.3 ms, kernel 295k elements), slower from 512 -> 256 (6x8x512 4.0-4.3 against 3.6-3.9,
#: 1.2M) and on every layer at batch 1 (0.7-1.0 ms: 1.2-1.7x, the finer tiles recompute
#: boundary rows and two narrow products at once gain little over one on two threads)
COL_THREADS_MAX_KERNEL = 1 << 19
COL_THREADS_MIN_COLUMNS = 1 << 20
COL_THREADS_TILE = 1 << 19
#: ... or COL_THREADS_MIN_ROWS input rows where those hold more: a block of output rows
#: recomputes the input row it shares with the next, so wide rows need taller tiles
#: (256x256x64->512x512x32 k4, 131k column elements a row: 2M tiles 28-29 ms, 512k 32)
COL_THREADS_MIN_ROWS = 16
#: col and accumulate read channels-first data in place (:func:`reads_channels_first`), a
#: product per item (BLAS reading its cells transposed), for a batch of items of at least
#: this many cells (or a single item); smaller items are moved channels-last around the
#: call, so that a product takes several at once (fifteenth session, in process,
#: alternating, ms, per item / moved: col 6x8x512->256 b8, 48 cells an item, 7.99 / 5.61;
#: gathered per tile instead, 6.79-7.78 / 6.43-7.44, tiles of kernel rows gathering again)
FIRST_MIN_CELLS = 128
#: "col" needs the per-axis tables (kernel length x output length) to stay small and one
#: row of one tile to stay bounded
COL_MAX_KERNEL = 1024
COL_MAX_TABLE = 1 << 20
COL_MAX_ROW = 1 << 22
#: forward convolutions take "im2col" where a cell's columns (taps x C_in) are at most this
#: many times its output channels: first layers (RGB in, 3x3 to 7x7) ran 1.8-2.6x faster than
#: flat or per tap, 3x3 16 -> 64 1.9x, 16 -> 32 10-15%; at 9 (C_in = C_out) alike or slower.
#: It runs before "rows" (ninth session, im2col / rows, ms): 96x128x3->32 b1 0.72 / 1.17, b8
#: 4.9 / 5.5; 96x128x16->32 b1 1.73 / 1.82, b8 9.2 / 8.8
IM2COL_MAX_COLUMNS = 5
#: ... and strided ones of at most this many input channels, whatever their output channels:
#: their other paths are per tap and concat (no rows, shift or accumulate), and the gather
#: reads each input cell a quarter as often at stride 2 (twelfth session, in process, per tap
#: -> im2col, ms): 40x40x16->64 k5 b4 1.88 -> 0.70, 56x56x64->64 b4 2.35 -> 1.72,
#: 96x128x64->32 b8 12.6 -> 9.8, 16^3x32->32 b2 0.89 -> 0.76; wider ones lose
#: (14x14x512->128 0.48 -> 1.03, 48x64x128->64 k4 1.74 -> 2.54, 7x7x512->512 b8 2.4 -> 5.6)
IM2COL_STRIDED_MAX_CHANNELS = 64
#: "im2col" runs its tiles side by side (each core gathers and multiplies its own, at least
#: a tile per core) where the kernel has at most IM2COL_THREADS_MAX_KERNEL elements and the
#: output at least IM2COL_THREADS_MIN_OUTPUT. In the benchmark's protocol (ninth session, side
#: by side / one after another, ms): 96x128x3->32 b8 3.15 / 4.59, 224x224x3->64 b1 2.34 /
#: 2.87; below the output bound the start costs more than the gather gains, 96x128x3->32 b1
#: (393k elements) 0.89 / 0.70, 96x128x16->32 b1 1.36 / 1.48
IM2COL_THREADS_MAX_KERNEL = 1 << 14
IM2COL_THREADS_MIN_OUTPUT = 1 << 20
#: "rows" (forward, 2-D, unit stride down the rows): a step's gather and the products of its
#: gathered rows hold at most this many elements (float32: 1 MiB, in L2 from the product to
#: the sum), and at most COL_TILE_PER_OUTPUT times the output
ROWS_TILE_ELEMENTS = 1 << 18
#: ... and runs, before "shift", where the kernel has at most ROWS_MAX_KERNEL elements and an
#: item at least ROWS_MIN_CELLS output cells. Measured in the benchmark's protocol on 2 cores
#: (ninth session, rows / shift, ms): 96x128x32->32 b1 2.13 / 2.17, b8 12.9 / 15.7;
#: 96x128x64->32 b1 3.45 / 3.52, b8 25.8 / 28.8; 48x64x64->64 b1 1.53 / 1.60, b8 11.3 / 12.2;
#: above it, 48x64x128->64 (kernel 74k) b1 2.68 / 2.46, b8 19.8 / 19.4, and wider layers
#: slower still (24x32x128->128 b1 1.76 / 1.20): their products are wide enough as they are
ROWS_MAX_KERNEL = 1 << 16
ROWS_MIN_CELLS = 128
#: ... and where a step of one item holds at least ROWS_MIN_STEP output rows, and the kernel
#: has more than one row, undilated (a single kernel row stacks nothing: 1x1 96x128x32->23 0.83
#: ms against shift's 0.27; dilated 3x3 48x64x64->64 1.46 against 1.30): small items,
#: whose memory bound leaves a row or two a step, ran slower than shift (12x16x32->32 b1 0.15
#: against 0.10 ms, 16x16x64->64 0.34 against 0.24; from 4 rows alike, 24x32x32->32 0.235 /
#: 0.227, and 5x5 64x64x16->16 0.70 against 1.48)
ROWS_MIN_STEP = 4
#: "rows" runs its tiles side by side, one per core (:mod:`tconv.kernels.threads`), where
#: the kernel has at most ROWS_THREADS_MAX_KERNEL elements and the output at least
#: ROWS_THREADS_MIN_OUTPUT: each core then gathers, multiplies (one BLAS thread) and sums its
#: own rows, in its own cache (whole items, or each item's rows in one run per core), each
#: step within ROWS_TILE_ELEMENTS (:func:`_rows_step`). Measured in the
#: benchmark's protocol on 2 cores (ninth session, at most 2^16 against 2^14, ms):
#: 96x128x64->32 (kernel 18k) b1 3.17 / 3.66, b8 19.4 / 25.5; 48x64x64->64 (37k) b1 1.56 /
#: 1.51, b8 8.8 / 10.7; 96x128x32->32 (9k, side by side either way) b1 2.2, b8 11.7-12.0. The
#: course U-Net alike (its layers mostly find OpenBLAS's worker running: one after another)
ROWS_THREADS_MAX_KERNEL = 1 << 16
ROWS_THREADS_MIN_OUTPUT = 1 << 18
#: forward convolutions of unit strides on 1-D and 2-D data take "shift" where they have at
#: least SHIFT_MIN_CHANNELS input channels (with fewer, nine products of a tiny inner
#: dimension: im2col or rows is faster, 96x128x16->32 1.49 against 1.68 ms) and a row's
#: product wastes at most SHIFT_MAX_WASTE times the output row (input width over output width).
#: Measured against the paths before it, in the benchmark's protocol on 2 cores, it was faster
#: on all the U-Net's 3x3 layers of 32 channels and more: 12x16x256->256 1.24 -> 1.09 ms,
#: 6x8x512->512 1.81 -> 1.59, 12x16x512->256 2.12 -> 1.87, 24x32x128->128 1.15 -> 0.94,
#: 48x64x64->64 1.50 -> 1.35, 96x128x64->32 4.00 -> 3.30, 96x128x32->32 2.53 -> 2.20
SHIFT_MIN_CHANNELS = 32
SHIFT_MAX_WASTE = 1.25
#: a "shift" tile's product holds at most this many elements (float32: 4 MiB), and at most
#: the output's (shared among the cores side by side): issue 3's memory target
SHIFT_TILE_ELEMENTS = 1 << 20
#: "shift" runs its tiles side by side (:mod:`tconv.kernels.threads`) where the kernel has
#: at most SHIFT_THREADS_MAX_KERNEL elements and the output at least SHIFT_THREADS_MIN_OUTPUT
SHIFT_THREADS_MAX_KERNEL = 1 << 14
SHIFT_THREADS_MIN_OUTPUT = 1 << 18
#: the compiled grouped loop (:func:`_grouped_run`) runs a block of output rows per core, side
#: by side, where the output has at least GROUPED_THREADS_MIN_OUTPUT elements. In process,
#: the two alternating, medians of 21, ms (AMD machine, thirteenth session), one after
#: another / side by side: depthwise 3x3 56x56x128 b1 0.83 / 0.59, 112x112x32 b1 2.07 /
#: 1.35, 28x28x256 b8 3.59 / 2.55; below it the start costs more: 3x3 stride 2 on 56x56x128
#: (an output of 100k elements) 0.22 / 0.26
GROUPED_THREADS_MIN_OUTPUT = 1 << 18
#: grouped layers of at least GROUPED_PERMUTED_MIN_GROUPS groups of at most
#: GROUPED_PERMUTED_MAX_CHANNELS input channels (depthwise ones aside) take the compiled
#: grouped loop on a copy of the input with its channels permuted groups innermost
#: (:func:`tconv.kernels.compiled.grouped_permuted`: one vector loop over the groups) instead
#: of accumulate's product per tap and group, whose few channels leave BLAS idle. In
#: process, one thread, alternating, medians of 15, ms (AMD machine, thirteenth session),
#: accumulate / permuted: 56x56x128 in 32 groups of 4 (ResNeXt) 4.8 / 2.7, b8 30.0 / 14.5;
#: 28x28x256 in 32 of 8 2.3 / 2.0; 14x14x512 in 32 of 16 1.8 / 1.5; 28x28x256 in 64 of 4
#: b8 16.3 / 7.4; the loop over each group's channels (grouped) 56x56x128 in 64 of 2 3.1 /
#: 1.9, in 42 of 3 4.8 / 2.2. Fewer groups lose: 56x56x64 in 16 of 4 1.6 / 2.0, 56x56x128
#: in 16 of 8 3.7 / 12.3; depthwise 0.76 / 1.86
GROUPED_PERMUTED_MIN_GROUPS = 32
GROUPED_PERMUTED_MAX_CHANNELS = 16
#: forward depthwise layers on 2-D data run the grouped loop row by row
#: (:func:`tconv.kernels.compiled.depthwise_rows`: one vector loop over the channels per
#: cell and tap, no table walk per cell). In process, alternating, medians of 31, ms (AMD
#: machine, thirteenth session), per cell / by rows, each side by side on these outputs (by
#: rows on one core in brackets): 56x56x128 0.60 / 0.44 (0.45), 112x112x32 1.29 / 0.66
#: (0.63), 112x112x64 1.73 / 1.19 (1.35), 28x28x256 b8 2.22 / 1.72 (2.30), 56x56x256 b4
#: 3.77 / 3.11 (4.42)
DEPTHWISE_ROWS = True
#: forward convolutions of unit strides whose output rows are as wide as their input rows take
#: "accumulate" (each tap's product added by BLAS straight into the output, no gather and no
#: scratch: :func:`_accumulate_run`) where they have at least ACCUMULATE_MIN_CHANNELS input
#: channels, a kernel of more than one tap and at most ACCUMULATE_MAX_KERNEL elements, and no
#: tap leaves more than ACCUMULATE_MAX_CUT of a row unreached. Measured against the path each
#: layer took before (eleventh session, in process, the two alternating, medians of 15-25,
#: 3x3 'same', ms): b1 / b8 96x128x32->32 rows 2.04 -> 1.38 / 15.2 -> 10.2; 96x128x64->32 rows
#: 3.43 -> 2.53 / 25.7 -> 18.6; 48x64x64->64 rows 1.46 -> 1.06 / 10.5 -> 7.6; 48x64x128->64
#: shift 2.50 -> 1.99 / 18.4 -> 14.0; 48x64x32->64 im2col 0.87 -> 0.64 / 5.3 -> 4.5;
#: 24x32x128->128 shift 1.10 -> 0.95 / 8.1 -> 6.7; 24x32x256->128 shift 1.89 -> 1.74 / 14.3 ->
#: 12.8. Small items, wide kernels, the items of a block in one run (b1 / b4 or b8):
#: 12x16x256->256 shift 1.14 -> 0.96 / 3.96-4.21 -> 3.58-3.78; 12x16x512->256 2.04 -> 1.87 /
#: 7.41-7.60 -> 7.16-7.24; 6x8x512->512 1.41 -> 1.33 / b8 7.33-7.75 -> 7.06-7.35; 6x8x256->512
#: im2col 1.02 -> 0.76 / 2.79-2.95 -> 1.92-2.04; 8x8x64->64 b8 0.42 -> 0.28-0.30; 4x4x64->64 b4
#: 0.10-0.12 -> 0.10-0.11; 32x32x64->64 b16 8.19 -> 5.84. Beyond 2^22 kernel elements it gains
#: nothing (6x8x1024->1024 b1 5.10 -> 5.18-5.32). Few input channels gain too, against im2col
#: or rows (b1): 96x128x16->32 1.32 -> 0.79, 96x128x8->16 0.64 -> 0.35, 224x224x8->64 4.79 ->
#: 4.27, 128x128x4->32 0.77 -> 0.67; but RGB is left to im2col, whose one product sums every
#: tap (224x224x3->64 2.76 -> 3.19, 96x128x3->32 0.54 -> 0.48); and 1-D (4096x64->32 k3 0.42
#: -> 0.34, 4096x32->32 k5 0.54 -> 0.28), dilated (48x64x64->64 d2 1.55 -> 1.12) and 5x5
#: kernels (96x128x32->32 4.11 -> 3.24) alike
ACCUMULATE_MIN_CHANNELS = 4
#: grouped layers take accumulate (a product per tap and group, BLAS reading and writing each
#: group's channels in place through its leading dimensions) from this many input channels
#: per group. Measured against the paths they took before (twelfth session, in process, b1,
#: 3x3 'same', ms; torch in brackets): 28x28x64->128 g2 concat 0.86 -> 0.35 (0.23);
#: 28x28x256->256 g8 concat 2.55 -> 1.11 (0.43); 56x56x128 g32 (ResNeXt's 4 a group) the
#: compiled direct loop 7.8 -> 4.5; 40x40x16->32 k5 g4 5.7 -> 0.59; 28x28x64 g16 1.12 -> 0.56;
#: 56x56x126 g42 (3 a group) 5.75 -> 3.69 but 56x56x128 g64 (2 a group) 3.64 -> 13.6, where
#: a product per tap and group of 2 channels costs more than the loop
ACCUMULATE_MIN_GROUP_CHANNELS = 4
ACCUMULATE_MAX_KERNEL = 1 << 22
ACCUMULATE_MAX_CUT = 0.25
#: ... and where its output rows are wider than its input rows by at most this share of them,
#: read from a copy of the input extended by zero columns (:func:`_accumulate_geometry`):
#: stride-1 transposed convolutions cropped less than 'same' ('valid', torch's padding=0),
#: where col sums taps x C_out columns per input cell. Twelfth session, in process, col ->
#: accumulate, ms, 'valid': 40x40x128->128 k5 b1 25 -> 5.3; 24x24x256->256 b1 5.5 -> 2.6;
#: 24x32x128->64 b1 1.42 -> 0.74; 64x64x64->64 b1 2.2 -> 1.5; 40x40x64->16 k4 b1 1.03 ->
#: 0.47; 40x40x32->64 b4 2.1 -> 1.55; 40x40x16->128 k4 d2 b4 5.5 -> 3.8. Small items lose,
#: each a product of its own (their rows are not as many in as out): 24x32x128->64 b8 4.0 ->
#: 4.7, 16x16x64->64 b4 0.52 -> 0.64, 12x16x256->128 b8 3.5 -> 5.3, 6x8x512->256 b1 0.59 ->
#: 0.95: so accumulate widens only an item's output of at least ACCUMULATE_WIDENED_MIN_CELLS
#: cells, and at least ACCUMULATE_WIDENED_BATCH_CELLS on several items (:func:`_batch_mode`)
ACCUMULATE_MAX_WIDENING = 0.25
ACCUMULATE_WIDENED_MIN_CELLS = 256
ACCUMULATE_WIDENED_BATCH_CELLS = 1024
#: ... and where its output rows are narrower than its input rows (a 'valid' forward
#: convolution, PyTorch's padding=0) by at most ACCUMULATE_MAX_WIDENING of them, into a frame
#: as wide as the input's rows, its first columns copied out (the copy is an extra pass over
#: the output). Against rows or shift (twelfth session, in process, ms, 3x3 'valid'): 28x28x256
#: b1 3.3 -> 2.75, 140x140x128 b1 25.2 -> 18.4, 568x568x64 b1 169 -> 126, 96x128x32 b8 13.5 ->
#: 12.2; but 64x64x64 b1 1.64 -> 1.80 and 96x128x32 b1 1.70 -> 2.05: so with fewer than
#: ACCUMULATE_FRAMED_MIN_CHANNELS input channels, only calls of ACCUMULATE_FRAMED_MIN_ELEMENTS
#: output elements and more
ACCUMULATE_FRAMED_MIN_CHANNELS = 128
ACCUMULATE_FRAMED_MIN_ELEMENTS = 1 << 20
#: ... a block of output at a time, each tap's product added to it in turn: at most this
#: many elements (float32: 2 MiB, an L2 here; whole items where they fit, their cells in one
#: run, else rows of an item), so that it stays in cache meanwhile: 224x224x8->64 b1 4.51 ->
#: 4.27 ms, 256x256x32->32 6.71 -> 6.42, the U-Net's layers alike (2^17 and 2^18 measured no
#: better)
ACCUMULATE_BLOCK_ELEMENTS = 1 << 19
#: force "col", "im2col", "rows", "shift", "grouped", "accumulate", "concat", "per_tap" or "flat" (tests; where the
#: layer cannot take the one forced, the nearest NumPy path); None chooses per shape
MODE: str | None = None


# ----------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class _Pass:
    """One dense convolution: the destination lattice and, per tap, what it reads.

    ``lattice[a] = (origin, step, length)``: destination cells ``origin + step * j`` of
    axis ``a``. ``reads[i][a] = (j0, j1, src0, src_step)``: tap ``taps[i]`` covers lattice
    cells ``j0 <= j < j1`` and reads source cell ``src0 + (j - j0) * src_step``."""

    taps: tuple[int, ...]
    lattice: tuple[tuple[int, int, int], ...]
    reads: tuple[tuple[tuple[int, int, int, int], ...], ...]


def _flat(tap: tuple[int, ...], shape: tuple[int, ...]) -> int:
    flat = 0
    for t, k in zip(tap, shape):
        flat = flat * k + t
    return flat


@functools.lru_cache(maxsize=256)
def _passes(geometry: Geometry) -> tuple[_Pass, ...]:
    """The forward convolution is one pass over the whole output; the transposed one
    is a pass per phase (residue of the output cell mod the stride, per axis) that
    some tap reaches. Cached: a layer runs the same plan again and again."""
    g, shape = geometry, geometry.kernel_shape
    if not g.transposed:
        taps, reads = [], []
        for tap, spans in g.taps():
            taps.append(_flat(tap, shape))
            reads.append(tuple((start, stop, first, a.stride)
                               for (start, stop, first), a in zip(spans, g.axes)))
        lattice = tuple((0, 1, a.out) for a in g.axes)
        return (_Pass(tuple(taps), lattice, tuple(reads)),) if taps else ()
    phases: dict[tuple[int, ...], tuple[list, list]] = {}
    for tap, spans in g.taps():
        phase = tuple(first % a.stride for (_, _, first), a in zip(spans, g.axes))
        taps, reads = phases.setdefault(phase, ([], []))
        taps.append(_flat(tap, shape))
        reads.append(tuple(((first - r) // a.stride, (first - r) // a.stride + stop - start, start, 1)
                           for (start, stop, first), r, a in zip(spans, phase, g.axes)))
    return tuple(_Pass(tuple(taps), tuple((r, a.stride, max(0, -(-(a.size - r) // a.stride)))
                                          for r, a in zip(phase, g.axes)), tuple(reads))
                 for phase, (taps, reads) in sorted(phases.items()))


def _lattice_rows(p: _Pass, r0: int, r1: int) -> tuple[slice, ...]:
    """Output slices (every spatial axis) of lattice rows ``[r0, r1)`` of pass ``p``."""
    (o0, s0, _), rest = p.lattice[0], p.lattice[1:]
    return (slice(o0 + s0 * r0, o0 + s0 * (r1 - 1) + 1, s0),) + tuple(
        slice(o, o + s * (n - 1) + 1, s) for o, s, n in rest)


def _covers_everything(geometry: Geometry) -> bool:
    """Whether the passes' lattices tile the whole output (else some cells get no tap)."""
    covered = sum(math.prod(n for _, _, n in p.lattice) for p in _passes(geometry))
    cells = math.prod(geometry.output_spatial)
    return covered == cells


def _unit_strides(geometry: Geometry) -> bool:
    """Whether every tap reads its source without a stride (every transposed pass does)."""
    return geometry.transposed or all(a.stride == 1 for a in geometry.axes)


def _mode(geometry: Geometry) -> str:
    """How the layer runs: "accumulate" where :func:`_accumulate_ready` takes it, else
    :func:`_other_mode`'s path (which :func:`_run` gives a call that "accumulate" cannot
    run: an output of other strides, channels-first among them, or of another dtype)."""
    if MODE in (None, "accumulate") and _accumulate_ready(geometry):
        return "accumulate"
    return _other_mode(geometry)


def _batch_mode(geometry: Geometry, batch: int) -> str:
    """:func:`_mode`'s path for a call on ``batch`` items: accumulate on an input extended to
    the output's width or into a frame as wide as the input's rows (:func:`_accumulate_geometry`)
    only where an item's output has at least ACCUMULATE_WIDENED_MIN_CELLS cells, and, on
    several items, ACCUMULATE_WIDENED_BATCH_CELLS (their rows are not as many as the input's,
    so each item is a product of its own); into a frame on 2-D data, only with at least
    ACCUMULATE_FRAMED_MIN_CHANNELS input channels or ACCUMULATE_FRAMED_MIN_ELEMENTS output
    elements in the call (3-D: always, against per tap: 3x3x3 'valid' 24^3x32->32 b1 8.1 ->
    5.4 ms, 16^3x32->32 b2 4.0 -> 2.9, 32^3x16->16 8.2 -> 4.3, 20^3x128->64 18.5 -> 12.9);
    else :func:`_other_mode`'s."""
    mode = _mode(geometry)
    if mode != "accumulate" or MODE is not None:
        return mode
    g = _accumulate_geometry(geometry)  # of the sizes of geometry where nothing is extended or framed
    framed = g.output_spatial != geometry.output_spatial
    cells = math.prod(g.output_spatial)
    if (framed or g.input_spatial != geometry.input_spatial) and (
            cells < ACCUMULATE_WIDENED_MIN_CELLS or (batch > 1 and cells < ACCUMULATE_WIDENED_BATCH_CELLS)):
        return _other_mode(geometry)
    if (g.rank == 2 and framed and g.input_channels < ACCUMULATE_FRAMED_MIN_CHANNELS
            and batch * cells * g.output_channels < ACCUMULATE_FRAMED_MIN_ELEMENTS):
        return _other_mode(geometry)  # into a frame: the copy out costs what rows saves
    return mode


def _other_mode(geometry: Geometry) -> str:
    """How the tiles multiply (measured on the benchmark layers, one thread): "flat" on 2-D
    and 3-D data where the taps read without a stride and the padded frame adds few extra
    cells (large or narrow layers, 5-25% faster); else "per_tap" (no gather of the taps
    side by side, no weight copy); "concat" for grouped convolutions. Before those, "col"
    for the transposed layers :func:`_col_ready` accepts, and for the forward ones "im2col"
    (:func:`_im2col_ready`), "rows" on small kernels and items of many rows
    (:func:`_rows_ready`, :data:`ROWS_MAX_KERNEL`, :data:`ROWS_MIN_STEP`), "shift"
    (:func:`_shift_ready`), then "rows" on any (measured on two threads)."""
    g = geometry
    if MODE is not None:
        if MODE == "col" and _col_ready(g):
            return "col"
        if MODE == "im2col" and _im2col_ready(g):
            return "im2col"
        if MODE == "rows" and _rows_ready(g):
            return "rows"
        if MODE == "shift" and _shift_ready(g):
            return "shift"
        if MODE == "grouped" and _grouped_ready(g):
            return "grouped"
        if g.groups > 1 or (MODE == "flat" and not _unit_strides(g)):
            return "concat"
        if MODE in ("col", "im2col", "rows", "shift", "grouped", "accumulate"):
            return "per_tap"
        return "per_tap" if MODE == "flat" and _flat_plan(g) is None else MODE
    if _col_ready(g):
        return "col"
    if _im2col_ready(g):
        return "im2col"
    if (_rows_ready(g) and g.kernel_shape[0] > 1 and g.axes[0].dilation == 1
            and math.prod(g.kernel_shape) * g.input_channels * g.output_channels <= ROWS_MAX_KERNEL
            and _rows_step(g, 1, False) >= ROWS_MIN_STEP):
        return "rows"
    if _shift_ready(g):
        return "shift"
    if _rows_ready(g):
        return "rows"
    if _grouped_ready(g):
        return "grouped"
    if g.groups > 1:
        return "concat"
    plan = _flat_plan(g) if _unit_strides(g) else None
    if plan is None or g.rank == 1:
        return "per_tap"
    narrow = g.input_channels <= FLAT_NARROW_CHANNELS
    return "flat" if plan.waste <= (FLAT_NARROW_MAX_WASTE if narrow else FLAT_MAX_WASTE) else "per_tap"


def _tiles(batch: int, lattice: tuple, per_cell: int, budget: int) -> list[tuple[int, int, int, int]]:
    """Tiles ``(n0, n1, r0, r1)`` of batch items and first-axis lattice rows holding at
    most ``budget`` elements at ``per_cell`` per cell; never less than one row of one item."""
    rows, row_cells = lattice[0][2], math.prod(n for _, _, n in lattice[1:])
    item = rows * row_cells * per_cell
    if item <= budget:
        step = max(1, budget // max(1, item))
        return [(n0, min(batch, n0 + step), 0, rows) for n0 in range(0, batch, step)]
    step = max(1, budget // max(1, row_cells * per_cell))
    return [(n, n + 1, r0, min(rows, r0 + step)) for n in range(batch) for r0 in range(0, rows, step)]


def _per_cell(geometry: Geometry, mode: str, taps: int) -> int:
    """Elements a tile holds per cell at most: concat the gathered taps, one tap's source
    block being split into groups, the product and its regrouped copy; per tap a copied
    source block, the product and the accumulator; flat the accumulator, a product and
    the biased copy it stores."""
    g = geometry
    src, dst = g.input_channels, g.output_channels
    if mode == "concat":
        return (taps + 1) * src + 2 * dst
    return src + 2 * dst if mode == "per_tap" else 3 * dst


def _tile_budget(per_cell: int, geometry: Geometry, batch: int) -> int:
    """Elements a tile may hold: TILE_ELEMENTS, or up to a quarter of the output (at most
    MAX_TILE_ELEMENTS) on large layers, where fewer, larger products wait less on BLAS's
    threads; at least MIN_TILE_CELLS cells."""
    g = geometry
    out = batch * math.prod(g.output_spatial) * g.output_channels
    return max(TILE_ELEMENTS, min(out // 4, MAX_TILE_ELEMENTS), MIN_TILE_CELLS * per_cell)


def settings() -> tuple:
    """Every setting the choice of path and its tiles depend on, now: this module's,
    whether the compiled loops run and whether tiles may run side by side. Caches of what
    follows from a plan key on it, so that a change of any (tests, ``compiled.ENABLED``, a
    user's BLAS thread limit) is a new entry, never a stale one."""
    return (MODE, compiled.available(), threads.workers(), TILE_ELEMENTS, MIN_TILE_CELLS,
            MAX_TILE_ELEMENTS, FLAT_MAX_WASTE, FLAT_NARROW_CHANNELS, FLAT_NARROW_MAX_WASTE,
            COL_TILE_PER_OUTPUT, COL_MIN_TILE, COL_MAX_TILE, COL_MIN_GROUP_CHANNELS, COL_FEW_CELLS,
            COL_ROW_GROUPS_GAIN, FIRST_MIN_CELLS, COL_LIES_MIN_KERNEL, IM2COL_LIES_MIN_RATIO, COL_MAX_KERNEL, COL_MAX_TABLE,
            COL_MAX_ROW, IM2COL_MAX_COLUMNS, IM2COL_STRIDED_MAX_CHANNELS,
            IM2COL_THREADS_MAX_KERNEL, IM2COL_THREADS_MIN_OUTPUT, ROWS_TILE_ELEMENTS,
            ROWS_MIN_CELLS, ROWS_MAX_KERNEL, ROWS_MIN_STEP, COL_THREADS_MAX_KERNEL, COL_THREADS_MIN_COLUMNS,
            COL_THREADS_TILE, COL_THREADS_MIN_ROWS, ROWS_THREADS_MAX_KERNEL, ROWS_THREADS_MIN_OUTPUT,
            SHIFT_MIN_CHANNELS, SHIFT_MAX_WASTE, SHIFT_TILE_ELEMENTS, SHIFT_THREADS_MAX_KERNEL,
            SHIFT_THREADS_MIN_OUTPUT, GROUPED_THREADS_MIN_OUTPUT, GROUPED_PERMUTED_MIN_GROUPS,
            GROUPED_PERMUTED_MAX_CHANNELS, DEPTHWISE_ROWS, SIDE_BY_SIDE, SIDE_BY_SIDE_IF_IDLE, ACCUMULATE_MIN_CHANNELS,
            ACCUMULATE_MAX_KERNEL, ACCUMULATE_MAX_CUT, ACCUMULATE_BLOCK_ELEMENTS, ACCUMULATE_MIN_GROUP_CHANNELS, ACCUMULATE_MAX_WIDENING,
            ACCUMULATE_WIDENED_MIN_CELLS, ACCUMULATE_WIDENED_BATCH_CELLS, ACCUMULATE_FRAMED_MIN_CHANNELS,
            ACCUMULATE_FRAMED_MIN_ELEMENTS,
            blas.available())


def temporary_elements(geometry: Geometry, batch: int, now: tuple | None = None,
                       prepared: Prepared | None = None) -> int:
    """Elements of temporaries a call holds at most: one tile (its budget, or one row of
    one batch item where a row is larger), the weight matrix concat builds, the padded
    source copy of flat. ``now``: :func:`settings`, where the caller has read them;
    ``prepared``: the call's :func:`prepare` (its kernel multiplied as it lies: those tiles)."""
    if prepared is not None and prepared.lies is not None:
        lies = _col_lies_temporary_elements if geometry.transposed else _im2col_lies_temporary_elements
        return lies(geometry, prepared.lies)
    return _temporary_elements(geometry, batch, settings() if now is None else now)


@functools.lru_cache(maxsize=256)
def _temporary_elements(geometry: Geometry, batch: int, now: tuple) -> int:
    # ``now``: settings(), so that a change of any is a new cache entry, not a stale bound
    g = geometry
    mode = _batch_mode(g, batch)
    if mode == "accumulate":  # C-contiguous copies, the edge cells kept aside; or the other path
        fallback = _mode_temporary_elements(g, batch, _other_mode(g), now)
        g = _accumulate_geometry(g)  # as it runs (mirrored, the input extended)
        copies = batch * math.prod(g.input_spatial) * g.input_channels + math.prod(g.neutral_kernel_shape)
        rows_out, _, plane = _accumulate_shape(g)
        view = (batch, rows_out) + plane  # the output's cells, as the kept index tuples index them

        def cells(index: tuple) -> int:  # of an index tuple of a step's kept cells
            return math.prod(part.stop - part.start for part in index) * math.prod(view[len(index):])

        steps = _accumulate_plan(g, batch, ACCUMULATE_BLOCK_ELEMENTS)
        aside = max((sum(cells(k) for k in kept) for *_, kept, _ in steps), default=0) * g.output_channels
        frame = (batch * math.prod(g.output_spatial) * g.output_channels  # into a frame, copied out
                 if g.output_spatial != geometry.output_spatial else 0)
        return max(copies + aside + frame, fallback)
    return _mode_temporary_elements(g, batch, mode, now)


def _mode_temporary_elements(geometry: Geometry, batch: int, mode: str, now: tuple) -> int:
    g = geometry
    if mode == "col":
        return _col_temporary_elements(g, batch, now)
    if mode == "im2col":
        return _im2col_temporary_elements(g, batch)
    if mode == "rows":
        return _rows_temporary_elements(g, batch)
    if mode == "shift":
        return _shift_temporary_elements(g, batch)
    if mode == "grouped":  # the tables, the bias and the kernel's copy; permuted, the input's copy;
        # by rows, one output row's sums per core
        permuted = batch * math.prod(g.input_spatial) * g.input_channels if _grouped_permuted(g) else 0
        rows = threads.workers() * g.output_spatial[1] * g.output_channels if _depthwise_rows(g) else 0
        return _table_elements(g) + g.output_channels + math.prod(g.neutral_kernel_shape) + permuted + rows
    if mode == "flat":
        plan = _flat_plan(g)
        per_cell = _per_cell(g, mode, 1)
        tile = max(_tile_budget(per_cell, g, batch), math.prod(plan.frame[1:]) * per_cell)
        return tile + (batch * math.prod(plan.frame) + plan.tail) * g.input_channels
    tile = 0
    for p in _passes(g):
        per_cell = _per_cell(g, mode, len(p.taps))
        tile = max(tile, _tile_budget(per_cell, g, batch), math.prod(n for _, _, n in p.lattice[1:]) * per_cell)
    return tile + (math.prod(g.neutral_kernel_shape) if mode == "concat" else 0)


# --------------------------------------------------------------------------- kernels


def _weights(kernel: np.ndarray, geometry: Geometry, taps: tuple[int, ...], mode: str):
    """Concat: ``(G, taps * C_src, C_dst)``. Per tap: ``(taps_all, C_src, C_dst)`` views."""
    g = geometry
    groups, cin, cout = g.groups, g.in_channels // g.groups, g.out_channels // g.groups
    every = math.prod(g.kernel_shape)
    k = kernel.reshape(every, cin, groups, cout)
    if mode == "per_tap":  # groups == 1
        k = k.reshape(every, cin, cout)
        return k if not g.transposed else k.transpose(0, 2, 1)
    if not g.transposed:
        if groups == 1 and taps == tuple(range(every)):
            return k.reshape(1, every * cin, cout)  # a view
        return k[list(taps)].transpose(2, 0, 1, 3).reshape(groups, len(taps) * cin, cout)
    return k[list(taps)].transpose(2, 0, 3, 1).reshape(groups, len(taps) * cout, cin)


def _covers(p: _Pass, i: int, r0: int, r1: int) -> bool:
    """Whether tap ``i`` of pass ``p`` reaches every cell of lattice rows ``[r0, r1)``."""
    read = p.reads[i]
    return (read[0][0] <= r0 and read[0][1] >= r1
            and all(j0 == 0 and j1 == n for (j0, j1, _, _), (_, _, n) in zip(read[1:], p.lattice[1:])))


def _src_block(read: tuple, lo: int, hi: int) -> tuple[slice, ...]:
    """Source slices of one tap over lattice rows ``lo:hi`` of axis 0 and all of the rest."""
    blocks = []
    for a, (j0, j1, s0, step) in enumerate(read):
        if a == 0:
            j0, j1, s0 = lo, hi, s0 + (lo - j0) * step
        blocks.append(slice(s0, s0 + (j1 - j0 - 1) * step + 1, step))
    return tuple(blocks)


@dataclass(frozen=True)
class Prepared:
    """What a call of a plan on a batch runs under :func:`settings`, worked out once: the
    path :func:`_mode` picks and, for col, col2im's tables and both tilings, side by side
    (None where the layer does not take that) and one after another, each tile with its
    merged offsets (:func:`_col_offsets`; None on 1-D): the call picks one
    (:func:`_side_by_side_now`).
    Callers that run the same call again keep it (:mod:`tconv.ops` does, beside its checks):
    a batch-1 layer of half a millisecond spent 30-40 us looking these up, once the
    kernel's run had evicted the interpreter's working set."""
    mode: str
    col: tuple | None = None  # (tables, threaded tiles or None, tiles); a tile: (bounds, offsets)
    lies: tuple | None = None  # instead, tiles for a kernel multiplied as it lies (_col_lies_tiles, _im2col_lies_tiles)


@functools.lru_cache(maxsize=256)
def prepare(geometry: Geometry, batch: int, now: tuple, mode: str | None = None, lies: bool = False) -> Prepared:
    """The :class:`Prepared` call of ``geometry`` on ``batch`` items (``now``: :func:`settings`)
    on the path :func:`_mode` picks, or on ``mode`` (accumulate's stand-in, :func:`_run`);
    ``lies``: the call's kernel lies in PyTorch's layout (:func:`kernel_lies`), which col
    (transposed, where :func:`_col_lies_tiles` takes the layer) or the (channel, tap) gather
    (forward, where :func:`_im2col_lies_tiles` does) then multiplies as it lies; the mode
    kept beside is the one the layer takes otherwise."""
    g = geometry
    forced, mode = mode, _batch_mode(g, batch) if mode is None else mode
    if lies and forced is None and math.prod(g.neutral_kernel_shape) >= COL_LIES_MIN_KERNEL:
        if not g.transposed:
            tiles = _im2col_lies_tiles(g, batch)
        else:
            tiles = _col_lies_tiles(g, batch, _col_budget(g, batch, False)) if mode == "col" else None
        if tiles is not None:
            return Prepared(mode, lies=tiles)
    if mode != "col":
        return Prepared(mode)

    def with_offsets(tiles: tuple) -> tuple:
        return tuple((t, None if g.rank == 1 else _col_offsets(g, t[5] - t[4])) for t in tiles)

    threaded, tiles = _col_plan(g, batch, now)
    return Prepared(mode, (_col_tables(g), None if threaded is None else with_offsets(threaded),
                           with_offsets(tiles)))


def _run(src: np.ndarray, kernel: np.ndarray, geometry: Geometry, bias, out, now,
         prepared: Prepared | None = None, first: np.ndarray | None = None) -> np.ndarray:
    """Both directions: ``src`` channels-last, the output written into ``out`` (channels-last
    indexing, any strides) or a new channels-last array, by the path :func:`_mode` picks
    (``now``: :func:`settings`, and ``prepared``: :func:`prepare`, where the caller has them).
    ``first``: ``src`` is channels-first (C-contiguous) and the call's channels-first output
    is ``first``, ``out`` a C-contiguous channels-last scratch: only where
    :func:`reads_channels_first` says the path takes that."""
    g = geometry
    if first is not None and not (out is not None and out.flags.c_contiguous and src.flags.c_contiguous
                                  and prepared is not None and reads_channels_first(g, prepared, kernel, src.shape[0])):
        raise TconvError("first", first, "is taken only by a prepared call on col or accumulate, with "
                                         "C-contiguous channels-first data and a C-contiguous channels-last scratch")
    dtype = src.dtype if src.dtype is kernel.dtype else np.result_type(src, kernel)
    if out is None:
        out = np.empty((src.shape[0],) + g.output_spatial + (g.output_channels,), dtype)
    if bias is not None and bias.dtype is not dtype:
        bias = bias.astype(dtype, copy=False)
    if prepared is None:
        prepared = prepare(g, src.shape[0], settings() if now is None else now)
    if prepared.lies is not None:
        if kernel_lies(kernel):
            if g.transposed:
                return _col_lies_run(src, kernel, g, bias, out, prepared.lies, first)
            return _im2col_lies_run(src, kernel, g, bias, out, prepared.lies)
        prepared = prepare(g, src.shape[0], settings() if now is None else now, prepared.mode)  # handed another
    mode = prepared.mode
    if first is not None and mode == "accumulate":  # reads_channels_first: out takes it
        return _accumulate_run(src, kernel, g, bias, out, first)
    if mode == "accumulate" and not _accumulate_takes(src, out):
        # an output it cannot add into (channels-first, or of another dtype): the path it
        # stands in for, prepared as that path is (col's tables and tiles)
        prepared = prepare(g, src.shape[0], settings() if now is None else now, _other_mode(g))
        mode = prepared.mode
    if mode == "col":
        return _col_run(src, kernel, g, bias, out, *prepared.col, first)
    return _run_mode(mode, src, kernel, g, bias, out)


def reads_channels_first(geometry: Geometry, prepared: Prepared, kernel: np.ndarray, batch: int) -> bool:
    """Whether a call of ``geometry`` on ``batch`` items prepared as ``prepared``, with
    ``kernel``, runs on col (transposed, as it lies or not) or on accumulate (where nothing
    is framed), which then read channels-first data in place and move their output rows
    channels-first as each tile or block finishes them (``first`` of :func:`conv` and
    :func:`conv_transpose`): where OpenBLAS's transpose runs
    (:func:`blas.transpose_available`), on items of at least :data:`FIRST_MIN_CELLS`
    cells or one item.

    Measured against moving the data channels-last and back around the call (fifteenth
    session, AMD machine, in process, alternating, medians of 25-30, ms, moved / in place /
    the channels-last call). Col, 3x3 stride 2 'same': 12x16x256->24x32x128 b1 0.92 / 0.87 /
    0.82, b8 7.97 / 7.89 / 6.96; 24x32x128 b1 1.37 / 1.23 / 1.13; 48x64x64 b1 1.28 / 1.17 /
    0.92, b8 15.4 / 14.7 / 10.8 and 14.2 / 12.7 / 8.8; kernels as they lie (the torch
    dialect), the seed b1 6.85 / 6.69, 12x16x256 b8 9.90 / 8.45. Accumulate, 3x3 'same':
    96x128x32->32 b1 3.28 / 2.59 / 1.84, b8 20.0 / 19.1 / 13.4; 48x64x64 b1 2.07 / 1.99 /
    1.70, b8 16.7 / 15.1 / 12.0; 24x32x128 b1 1.83 / 1.68 / 1.52; 12x16x256 b1 1.64 / 1.55 /
    1.46. What is left against channels-last: BLAS packs the transposed input more slowly
    (96x128x32 b1: the products 2.15 against 1.8 ms) and the output is moved once more
    (0.31 ms there)."""
    g = geometry
    if not blas.transpose_available() or (batch > 1 and math.prod(g.input_spatial) < FIRST_MIN_CELLS):
        return False
    if prepared.lies is not None and kernel_lies(kernel):
        return g.transposed  # col as it lies (forward: the (channel, tap) gather)
    if prepared.mode == "accumulate":
        return _accumulate_geometry(g).output_spatial == g.output_spatial  # not into a frame
    return g.transposed and prepared.mode == "col" and prepared.col is not None


def _run_mode(mode: str, src: np.ndarray, kernel: np.ndarray, geometry: Geometry, bias, out) -> np.ndarray:
    """A path other than col on the whole call."""
    if mode not in ("im2col", "rows", "shift", "grouped", "accumulate") and not _covers_everything(geometry):
        out[...] = 0 if bias is None else bias  # cells no tap reaches: zeros, or the bias
    return _RUNS[mode](src, kernel, geometry, bias, out)


def _concat_run(src: np.ndarray, kernel: np.ndarray, geometry: Geometry, bias, out) -> np.ndarray:
    """Per tile, the taps' source blocks gathered side by side (zeros where a tap reads
    padding), one (batched, per group) product, stored."""
    g = geometry
    dtype = np.result_type(src, kernel)
    batch, groups = src.shape[0], g.groups
    cs, cd = g.input_channels, g.output_channels
    cs_g = cs // groups
    tasks = []
    for p in _passes(g):
        per_cell = _per_cell(g, "concat", len(p.taps))
        w = _weights(kernel, g, p.taps, "concat")
        for tile in _tiles(batch, p.lattice, per_cell, _tile_budget(per_cell, g, batch)):
            tasks.append((p, w, tile))

    def store(p: _Pass, tile, res: np.ndarray) -> None:
        n0, n1, r0, r1 = tile
        view = out[(slice(n0, n1),) + _lattice_rows(p, r0, r1)]
        if bias is not None:
            res += bias
        view[...] = res.reshape(view.shape)

    def concat(task) -> None:
        p, w, (n0, n1, r0, r1) = task
        lead = (n1 - n0, r1 - r0) + tuple(n for _, _, n in p.lattice[1:])
        cells, taps = math.prod(lead), len(p.taps)
        # groups split the gather: cols[group, cell, tap, channel], so each group's matrix is a view
        cols = np.empty((groups,) + lead + (taps, cs_g), dtype)
        cols_by_cell = np.moveaxis(cols, 0, -2)  # (*lead, taps, groups, cs_g)
        for i, read in enumerate(p.reads):
            lo, hi = max(read[0][0], r0), min(read[0][1], r1)
            spans = ((lo - r0, max(lo, hi) - r0),) + tuple((j0, j1) for j0, j1, _, _ in read[1:])
            for axis, (start, stop) in enumerate(spans):  # zeros where the tap reads padding
                before = (slice(None),) * (axis + 1)
                if start > 0:
                    cols_by_cell[before + (slice(0, start), Ellipsis, i, slice(None), slice(None))] = 0
                if stop < lead[axis + 1]:
                    cols_by_cell[before + (slice(stop, None), Ellipsis, i, slice(None), slice(None))] = 0
            if hi <= lo:
                continue
            dst = (slice(None),) + tuple(slice(start, stop) for start, stop in spans)
            block = src[(slice(n0, n1),) + _src_block(read, lo, hi)]
            cols_by_cell[dst + (i,)] = block.reshape(block.shape[:-1] + (groups, cs_g))
        if groups == 1:
            res = cols.reshape(cells, taps * cs) @ w[0]
        else:
            res = np.moveaxis(np.matmul(cols.reshape(groups, cells, taps * cs_g), w), 0, -2)
        store(p, (n0, n1, r0, r1), res.reshape(lead + (cd,)))

    for task in tasks:
        concat(task)
    return out


@functools.lru_cache(maxsize=256)
def _per_tap_plan(geometry: Geometry, batch: int, budget: int) -> tuple:
    """Per tile of every pass: the output cells it stores, its shape, and per reaching tap
    the source block and the part of the tile it adds into (``None``: all of it; such a
    tap goes first and fills the tile). Cached, so a call only slices and multiplies."""
    g = geometry
    plan = []
    for p in _passes(g):
        rest = p.lattice[1:]
        for n0, n1, r0, r1 in _tiles(batch, p.lattice, _per_cell(g, "per_tap", 1), budget):
            taps = []
            for i, (tap, read) in enumerate(zip(p.taps, p.reads)):
                lo, hi = max(read[0][0], r0), min(read[0][1], r1)
                if hi <= lo:
                    continue
                part = None if _covers(p, i, r0, r1) else (
                    (slice(None), slice(lo - r0, hi - r0)) + tuple(slice(j0, j1) for j0, j1, _, _ in read[1:]))
                taps.append((tap, (slice(n0, n1),) + _src_block(read, lo, hi), part))
            taps.sort(key=lambda t: t[2] is not None)
            store = (slice(n0, n1),) + _lattice_rows(p, r0, r1)
            plan.append((store, (n1 - n0, r1 - r0) + tuple(n for _, _, n in rest), tuple(taps)))
    return tuple(plan)


def _per_tap_run(src: np.ndarray, kernel: np.ndarray, geometry: Geometry, bias, out) -> np.ndarray:
    """One product per tap on its source block, with the kernel tap as it lies in memory,
    summed into the tile."""
    g = geometry
    dtype = np.result_type(src, kernel)
    cs, cd = g.input_channels, g.output_channels
    w = _weights(kernel, g, (), "per_tap")
    budget = _tile_budget(_per_cell(g, "per_tap", 1), g, src.shape[0])
    for store, lead, taps in _per_tap_plan(g, src.shape[0], budget):
        acc = None
        for tap, block_index, part in taps:
            block = src[block_index].reshape(-1, cs)
            if acc is None and part is None:  # the first product fills the tile
                acc = np.matmul(block, w[tap])
            else:
                if acc is None:
                    acc = np.zeros((math.prod(lead), cd), dtype)
                dst = acc if part is None else acc.reshape(lead + (cd,))[part]
                dst += (block @ w[tap]).reshape(dst.shape)
            del block  # before the next tap copies its own
        if acc is None:
            acc = np.zeros((math.prod(lead), cd), dtype)
        if bias is not None:
            acc += bias
        out[store] = acc.reshape(lead + (cd,))
    return out


@dataclass(frozen=True)
class _FlatPlan:
    """The transposed passes on one zero-padded copy of the source, flattened.

    Source cell ``j + delta`` of a tap becomes flat offset ``f + base`` of the padded
    copy for every lattice cell ``f`` (in the padded frame ``frame``), so each tap's
    operand is one contiguous slice: no gather. Cells of the frame beyond the lattice
    are computed and dropped; ``waste`` is that overhead."""

    pad: tuple[tuple[int, int], ...]          # per axis, zeros before and after the source
    frame: tuple[int, ...]                     # padded source shape = the accumulator's frame
    tail: int                                  # zero cells after the last item (slices run past it)
    bases: tuple[tuple[int, ...], ...]         # per pass, per tap: flat offset into the padded source
    waste: float


@functools.lru_cache(maxsize=256)
def _flat_plan(geometry: Geometry) -> _FlatPlan | None:
    passes = _passes(geometry)
    if not passes:
        return None
    axes = geometry.axes
    lo = [0] * len(axes)
    hi = [0] * len(axes)
    for p in passes:
        for read in p.reads:
            for a, ((j0, _, s0, _), (_, _, length), n_src) in enumerate(
                    zip(read, p.lattice, geometry.input_spatial)):
                delta = s0 - j0
                lo[a] = max(lo[a], -delta)
                hi[a] = max(hi[a], length - 1 + delta - (n_src - 1))
    frame = tuple(n + l + h for n, l, h in zip(geometry.input_spatial, lo, hi))
    strides = [math.prod(frame[a + 1:]) for a in range(len(frame))]
    bases = tuple(tuple(sum((s0 - j0 + l) * st for (j0, _, s0, _), l, st in zip(read, lo, strides))
                        for read in p.reads) for p in passes)
    tail = max(max(b) for b in bases)
    cells = sum(math.prod(n for _, _, n in p.lattice) for p in passes)
    waste = len(passes) * math.prod(frame) / max(1, cells)
    return _FlatPlan(tuple(zip(lo, hi)), frame, tail, bases, waste)


def _flat_run(src: np.ndarray, kernel: np.ndarray, geometry: Geometry, bias, out) -> np.ndarray:
    """Transposed convolution, pass by pass, on the flattened padded source: per tile of
    frame rows, one product per tap on a contiguous slice, added into the tile."""
    g = geometry
    plan = _flat_plan(g)
    dtype = np.result_type(src, kernel)
    batch = src.shape[0]
    cs, cd = g.input_channels, g.output_channels
    frame_cells = math.prod(plan.frame)
    padded = np.zeros((batch * frame_cells + plan.tail, cs), dtype)
    inner = padded[:batch * frame_cells].reshape((batch,) + plan.frame + (cs,))
    inner[(slice(None),) + tuple(slice(l, l + n) for (l, _), n in zip(plan.pad, g.input_spatial))] = src
    every = math.prod(g.kernel_shape)
    w = kernel.reshape(every, cd, cs).transpose(0, 2, 1) if g.transposed else kernel.reshape(every, cs, cd)
    plane = math.prod(plan.frame[1:])
    rows = batch * plan.frame[0]
    per_cell = _per_cell(g, "flat", 1)
    step = max(1, _tile_budget(per_cell, g, batch) // (plane * per_cell))
    passes = _passes(g)
    tasks = [(k, q0, min(rows, q0 + step)) for k in range(len(passes)) for q0 in range(0, rows, step)]

    def work(task) -> None:
        k, q0, q1 = task
        p, bases = passes[k], plan.bases[k]
        f0, f1 = q0 * plane, q1 * plane
        acc = np.matmul(padded[f0 + bases[0]:f1 + bases[0]], w[p.taps[0]])
        for tap, base in zip(p.taps[1:], bases[1:]):
            acc += padded[f0 + base:f1 + base] @ w[tap]
        acc = acc.reshape((q1 - q0,) + plan.frame[1:] + (cd,))
        keep = tuple(slice(0, n) for _, _, n in p.lattice[1:])
        n0 = p.lattice[0][2]
        for item in range(q0 // plan.frame[0], (q1 - 1) // plan.frame[0] + 1):
            first = item * plan.frame[0]
            r0, r1 = max(q0, first) - first, min(q1, first + n0) - first  # lattice rows of this item here
            if r1 <= r0:
                continue
            block = acc[(slice(first + r0 - q0, first + r1 - q0),) + keep]
            view = out[(item,) + _lattice_rows(p, r0, r1)]
            if bias is not None:
                block = block + bias
            view[...] = block

    for task in tasks:
        work(task)
    return out


# ------------------------------------------------------------------- col (compiled)


@functools.lru_cache(maxsize=256)
def _col_tables(geometry: Geometry) -> tuple[np.ndarray, ...] | None:
    """Per axis (three: unit axes appended) ``(count, tap, cell)``: output cell ``o`` is
    reached through tap ``tap[o, m]`` from input cell ``cell[o, m]``, ``m < count[o]``
    (from :meth:`~tconv.geometry.AxisGeometry.tap_span`); then the last two axes' kernel
    lengths. None where the tables would be too large."""
    g = geometry
    if (max(a.kernel for a in g.axes) > COL_MAX_KERNEL
            or sum(a.kernel * n for a, n in zip(g.axes, g.output_spatial)) > COL_MAX_TABLE):
        return None
    tables = []
    for a, n in zip(g.axes, g.output_spatial):
        cell = np.full((a.kernel, n), -1, np.int64)  # cell[k, o]: the input cell, or -1
        for k in range(a.kernel):
            start, stop, first = a.tap_span(k)
            if stop <= start:  # the tap reaches nothing (its offsets may not even fit int64)
                continue
            # a span of two cells or more lies within both lengths, so its stride fits int64
            steps = np.arange(stop - start) * (a.stride if stop - start > 1 else 0)
            if g.transposed:  # inputs start.. land on outputs first, first + stride, ...
                cell[k, first + steps] = np.arange(start, stop)
            else:             # outputs start.. read inputs first, first + stride, ...
                cell[k, start:stop] = first + steps
        reached = cell >= 0
        order = np.argsort(~reached, axis=0, kind="stable")[:max(1, int(reached.sum(0).max(initial=0)))]
        tables += [reached.sum(0), np.ascontiguousarray(order.T),
                   np.ascontiguousarray(np.take_along_axis(cell, order, 0).T)]
    for _ in range(3 - g.rank):
        tables += [np.ones(1, np.int64), np.zeros((1, 1), np.int64), np.zeros((1, 1), np.int64)]
    kernel = g.kernel_shape + (1,) * (3 - g.rank)
    return tuple(tables) + kernel[1:]


def _table_elements(geometry: Geometry, pairs: bool = True) -> int:
    """The tables of :func:`_col_tables` and (``pairs``) :func:`_col_pairs` counted in float32
    elements (int64: two each)."""
    merged = (_col_pairs(geometry) or ()) if pairs else ()
    return 2 * sum(t.size for t in _col_tables(geometry)[:-2] + merged)


@functools.lru_cache(maxsize=256)
def _col_pairs(geometry: Geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The last two axes' pairs of :func:`_col_tables` merged, per output cell ``q`` of those
    axes (flattened): ``count[q]`` pairs, pair ``m`` reaching input cell ``cell[q, m] = j1 *
    n2 + j2`` (``n2``: the last axis's input cells) through tap ``tap[q, m] = t1 * k2 + t2``
    (``k2``: the last axis's taps), in the order of the per-axis loops (``m1`` before ``m2``).
    The compiled loops then take one index per pair instead of three tables and a six-axis
    one: col2im 1.3-1.5x and im2col up to 1.75x faster on the U-Net's layers of few channels.
    None where they would exceed COL_MAX_TABLE entries."""
    g = geometry
    tables = _col_tables(g)
    count1, tap1, cell1, count2, tap2, cell2 = tables[3:9]
    cells, pairs = count1.size * count2.size, tap1.shape[1] * tap2.shape[1]
    if cells * pairs > COL_MAX_TABLE:
        return None
    k2, n2 = tables[-1], (g.input_spatial + (1, 1))[2]
    cell = (cell1[:, None, :, None] * n2 + cell2[None, :, None, :]).reshape(cells, pairs)
    tap = (tap1[:, None, :, None] * k2 + tap2[None, :, None, :]).reshape(cells, pairs)
    valid = ((np.arange(tap1.shape[1])[None, None, :, None] < count1[:, None, None, None])
             & (np.arange(tap2.shape[1])[None, None, None, :] < count2[None, :, None, None])).reshape(cells, pairs)
    order = np.argsort(~valid, axis=1, kind="stable")  # each cell's pairs first, in order
    return (valid.sum(1), np.ascontiguousarray(np.take_along_axis(np.where(valid, cell, 0), order, 1)),
            np.ascontiguousarray(np.take_along_axis(np.where(valid, tap, 0), order, 1)))


@functools.lru_cache(maxsize=256)
def _col_offsets(geometry: Geometry, k_rows: int) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`_col_pairs` as col2im reads them from a tile of ``k_rows`` kernel rows: per
    output cell ``q``, ``count[q]`` offsets ``cell * taps + tap`` into a kernel row's columns
    (``taps``: the tile's). None where the pairs are."""
    pairs = _col_pairs(geometry)
    if pairs is None:
        return None
    count, cell, tap = pairs
    taps = k_rows * math.prod(geometry.kernel_shape[1:])
    return count, cell * taps + tap


def _runs(count: np.ndarray, cell: np.ndarray, tap: np.ndarray) -> tuple[np.ndarray, ...]:
    """Pairs (per output cell ``q``, ``count[q]`` pairs of input cell and tap, in order)
    merged into runs: a pair whose input cell and tap both follow the one before's joins its
    run. Returns ``(count, cell, tap, length)``: per ``q``, ``count[q]`` runs, each of
    ``length[q, m]`` pairs from ``(cell[q, m], tap[q, m])``. Along an axis of dilation 1 a
    window's taps read adjacent cells, so its pairs are one run; dilated, each is its own."""
    width = cell.shape[1]
    valid = np.arange(width)[None, :] < count[:, None]
    joins = np.zeros_like(valid)
    joins[:, 1:] = (cell[:, 1:] == cell[:, :-1] + 1) & (tap[:, 1:] == tap[:, :-1] + 1)
    starts = valid & ~joins
    runs = starts.sum(1)
    index = np.cumsum(starts, 1) - 1  # each pair's run
    shape = (count.size, max(1, int(runs.max(initial=0))))
    first_cell, first_tap, length = (np.zeros(shape, np.int64) for _ in range(3))
    q, m = np.nonzero(starts)
    first_cell[q, index[q, m]] = cell[q, m]
    first_tap[q, index[q, m]] = tap[q, m]
    q, m = np.nonzero(valid)
    np.add.at(length, (q, index[q, m]), 1)
    return runs.astype(np.int64), first_cell, first_tap, length


@functools.lru_cache(maxsize=256)
def _col_runs(geometry: Geometry) -> tuple[np.ndarray, ...] | None:
    """The runs (:func:`_runs`) :func:`compiled.im2col` copies: of the last two axes' merged
    pairs (:func:`_col_pairs`), or on 1-D data of the only axis's pairs (the gather then
    takes an item as one row and a tile's cells as its cells). None where the pairs are."""
    if geometry.rank == 1:
        count, tap, cell = _col_tables(geometry)[:3]
        return _runs(count, cell, tap)
    pairs = _col_pairs(geometry)
    return None if pairs is None else _runs(*pairs)


def _runs_elements(geometry: Geometry) -> int:
    """The tables of :func:`_col_runs` in float32 elements (int64: two each)."""
    return 2 * sum(t.size for t in _col_runs(geometry) or ())


def _flat_cells(array: np.ndarray, rank: int) -> np.ndarray | None:
    """``array`` ``(N, *spatial, C)`` as ``(N, rows, cells * C)`` (1-D: ``(N, 1, cells * C)``),
    a view in which a row's cells and their channels are one run in memory, as
    :func:`compiled.im2col` reads its source; None where they are not."""
    shape = array.shape
    rows = 1 if rank == 1 else shape[1]
    try:
        flat = np.reshape(array, (shape[0], rows, -1), copy=False)
    except ValueError:  # the cells' strides do not merge
        return None
    return flat if flat.shape[-1] <= 1 or flat.strides[-1] == array.itemsize else None


def _cells_view(out: np.ndarray, rank: int) -> np.ndarray | None:
    """``out`` ``(N, *spatial, C)`` as ``(N, rows, cells of the other axes, C)``, a view; None
    where the other axes' strides do not merge into one (3-D data in a layout whose rows'
    cells are not evenly spaced)."""
    shape, strides = out.shape[1:-1], out.strides[1:-1]
    if rank == 3 and shape[1] > 1 and shape[2] > 1 and strides[1] != strides[2] * shape[2]:
        return None
    return out.reshape(out.shape[:2] + (math.prod(shape[1:]), out.shape[-1]))


def _as3d(array: np.ndarray, rank: int) -> np.ndarray:
    """``(N, *spatial, C)`` with unit axes appended to three spatial axes, as the compiled
    loops take it (a view, whatever the strides)."""
    return array.reshape(array.shape[:1 + rank] + (1,) * (3 - rank) + array.shape[-1:])


def _col_ready(geometry: Geometry) -> bool:
    """Whether the compiled "col" path runs this layer: a transposed convolution with at
    least COL_MIN_GROUP_CHANNELS input channels per group, Numba present, small tables, and
    one kernel row of one input row bounded."""
    g = geometry
    if not g.transposed or not compiled.available() or _col_tables(g) is None:
        return False
    if MODE is None and g.input_channels // g.groups < COL_MIN_GROUP_CHANNELS:
        return False  # a product per group of a few channels: concat is faster (measured)
    return _col_row(g) <= COL_MAX_ROW


def _col_row(geometry: Geometry) -> int:
    """Column elements of one input row through one kernel row (of one group)."""
    g = geometry
    return (math.prod(g.kernel_shape) // g.kernel_shape[0] * (g.output_channels // g.groups)
            * math.prod(g.input_spatial[1:]))


def _col_threaded(geometry: Geometry, batch: int) -> bool:
    """Whether "col" runs its tiles side by side on every core: the product of a tile packs
    the kernel again on one thread, so only small kernels, and enough columns to share."""
    g = geometry
    kernel = math.prod(g.kernel_shape) * (g.input_channels // g.groups) * (g.output_channels // g.groups)
    columns = batch * math.prod(g.input_spatial) * math.prod(g.kernel_shape) * g.output_channels
    return (SIDE_BY_SIDE and g.transposed and kernel <= COL_THREADS_MAX_KERNEL and columns >= COL_THREADS_MIN_COLUMNS
            and threads.available())


def _side_by_side_now(planned: bool) -> bool:
    """Whether tiles that the layer's rules would run side by side (``planned``) run so at
    this call: where :data:`SIDE_BY_SIDE_IF_IDLE`, only while every helper finds a CPU that
    none of the process's other threads is running on (:func:`tconv.kernels.threads.idle`)."""
    return planned and (not SIDE_BY_SIDE_IF_IDLE or threads.idle(threads.workers() - 1))


def _col_budget(geometry: Geometry, batch: int, side_by_side: bool) -> int:
    """Elements of columns one tile holds: COL_TILE_PER_OUTPUT times the output's, within
    [COL_MIN_TILE, COL_MAX_TILE]; ``side_by_side`` (:func:`_col_threaded`), that shared
    among the cores, at most COL_THREADS_TILE each or COL_THREADS_MIN_ROWS input rows."""
    out = batch * math.prod(geometry.output_spatial) * geometry.output_channels
    if side_by_side:
        share = int(COL_TILE_PER_OUTPUT * out) // threads.workers()
        rows = COL_THREADS_MIN_ROWS * geometry.kernel_shape[0] * _col_row(geometry)
        return max(COL_MIN_TILE, min(share, max(COL_THREADS_TILE, rows)))
    return max(COL_MIN_TILE, min(int(COL_TILE_PER_OUTPUT * out), COL_MAX_TILE))


@functools.lru_cache(maxsize=256)
def _col_tiles(geometry: Geometry, batch: int, budget: int, disjoint: bool, gain: float) -> tuple:
    """Tiles ``(n0, n1, r0, r1, k0, k1, j0, j1)``: batch items, output rows of the first
    axis, kernel rows, and the input rows their taps reach there. The whole batch with
    every tap where that fits, or blocks of whole items where the tiles must write
    ``disjoint`` outputs (side by side); else blocks of items by groups of kernel rows
    where one kernel row over an item fits (no input row multiplied twice; the blocks
    :func:`_col_item_row_blocks` picks); else by blocks of output rows, each with the input
    rows its taps reach (neighbouring blocks share a few). ``gain``:
    :data:`COL_ROW_GROUPS_GAIN`."""
    g = geometry
    count, tap, cell = _col_tables(g)[:3]
    k_rows, rows_out, rows_in = g.kernel_shape[0], g.output_spatial[0], g.input_spatial[0]
    row = _col_row(g)
    item = rows_in * row

    def reach(r0: int, r1: int, k0: int, k1: int) -> tuple[int, int]:
        pairs = np.arange(tap.shape[1]) < count[r0:r1, None]
        cells = cell[r0:r1][pairs & (tap[r0:r1] >= k0) & (tap[r0:r1] < k1)]
        return (int(cells.min()), int(cells.max()) + 1) if cells.size else (0, 0)

    if item * k_rows <= budget and (disjoint or item * k_rows * batch <= budget):
        step = budget // max(1, item * k_rows)
        return tuple((n0, min(batch, n0 + step), 0, rows_out, 0, k_rows, 0, rows_in)
                     for n0 in range(0, batch, step))
    if item <= budget and not disjoint:
        items, kr = _col_item_row_blocks(g, batch, budget // item, gain)
        groups = [(k0, min(k_rows, k0 + kr)) for k0 in range(0, k_rows, kr)]
        return tuple((n0, min(batch, n0 + items), 0, rows_out, k0, k1) + reach(0, rows_out, k0, k1)
                     for n0 in range(0, batch, items) for k0, k1 in groups)
    rows = max(1, budget // (row * k_rows))
    pairs = np.arange(tap.shape[1]) < count[:, None]
    first = np.where(pairs, cell, np.iinfo(np.int64).max).min(1)  # per output row, the input
    last = np.where(pairs, cell, -1).max(1)                       # rows its taps reach
    blocks, r0 = [], 0
    while r0 < rows_out:  # grow each block while the input rows it reaches fit
        r1, lo, hi = r0 + 1, first[r0], last[r0]
        while r1 < rows_out and max(hi, last[r1]) - min(lo, first[r1]) < rows:
            lo, hi, r1 = min(lo, first[r1]), max(hi, last[r1]), r1 + 1
        blocks.append((r0, r1))
        r0 = r1
    return tuple((n, n + 1, r0, r1, 0, k_rows) + reach(r0, r1, 0, k_rows)
                 for n in range(batch) for r0, r1 in blocks)


def _col_item_row_blocks(geometry: Geometry, batch: int, fits: int, gain: float) -> tuple[int, int]:
    """col's tiles of a batch whose every tap does not fit at once: the items and kernel
    rows a tile takes (their product at most ``fits``, the kernel rows over one item that
    fit), chosen so that BLAS packs its operands least, the items in blocks as even as
    that count of blocks allows.

    Each product packs all of its operands (OpenBLAS keeps nothing from a call to the
    next): a tile packs the rows of the kernel it multiplies and the input of its items.
    Over the tiles, blocks of ``items`` pack the kernel ``ceil(batch / items)`` times and
    groups of ``rows`` kernel rows pack the input ``ceil(k_rows / rows)`` times. Where the
    kernel is the larger, groups of kernel rows over many items pack less than blocks of
    whole items. But they write some output rows and then add to them, so they are taken
    only where they pack at most ``gain`` (:data:`COL_ROW_GROUPS_GAIN`) of what whole
    items pack; ties go to more kernel rows, then to more items. Measured against whole
    items, alternating processes, medians of 25, ms (share packed):

    ====================================  ======  =========  ===========
    layer                                 share   groups     whole items
    ====================================  ======  =========  ===========
    8x8x1024->16x16x512 batch 2           0.54    5.5-6.3    6.4-6.8
    6x8x512->12x16x256 batch 2            0.55    1.33-1.39  1.44-1.53
    8x8x1024->16x16x512 batch 8           0.63    17.6-19.3  18.2-19.3
    6x8x512->12x16x256 batch 8            0.69    3.83-3.98  3.88-4.13
    12x16x256->24x32x128 batch 3          0.71    1.80-1.86  1.77-1.83
    12x16x256->24x32x128 batch 2          0.83    1.05-1.18  0.97-1.12
    ====================================  ======  =========  ===========
    """
    g = geometry
    k_rows = g.kernel_shape[0]
    kernel = math.prod(g.kernel_shape) * g.input_channels * g.output_channels // g.groups
    source = batch * math.prod(g.input_spatial) * g.input_channels

    def packed(option: tuple[int, int]) -> tuple[int, int, int]:
        items, rows = option
        return -(-batch // items) * kernel + -(-k_rows // rows) * source, -rows, -items

    options = []
    for rows in range(1, min(k_rows, fits) + 1):
        blocks = -(-batch // min(batch, fits // rows))  # as many items as fit, in even blocks
        options.append((-(-batch // blocks), rows))
    best = min(options, key=packed)
    if fits >= k_rows and packed(best)[0] > gain * packed(options[-1])[0]:
        return options[-1]  # whole items, unless groups of kernel rows pack clearly less
    return best


def _col_temporary_elements(geometry: Geometry, batch: int, now: tuple) -> int:
    """The largest tile's columns and input block (copied where the input is not
    contiguous, channels-first), one per core where the tiles run side by side, whichever
    way the call runs them; the int64 tables (two float32 elements a cell; the merged ones
    of each tile's count of kernel rows too), the bias."""
    g = geometry
    per_row = _col_row(g) // math.prod(g.input_spatial[1:])
    threaded, tiles = _col_plan(g, batch, now)  # the tiles prepare() hands _col_run

    def largest(tiles: tuple) -> int:
        return max((n1 - n0) * (j1 - j0) * ((k1 - k0) * per_row + g.input_channels)
                   for n0, n1, _, _, k0, k1, j0, j1 in tiles)

    in_flight = largest(tiles) if threaded is None else max(largest(tiles), threads.workers() * largest(threaded))
    k_rows = {k1 - k0 for _, _, _, _, k0, k1, _, _ in tiles + (threaded or ())}
    merged = filter(None, (_col_offsets(g, k) for k in k_rows))
    tables = _table_elements(g) + sum(2 * (count.size + offset.size) for count, offset in merged)
    return in_flight * math.prod(g.input_spatial[1:]) + tables + g.output_channels


@functools.lru_cache(maxsize=256)
def _col_plan(geometry: Geometry, batch: int, now: tuple) -> tuple[tuple | None, tuple]:
    """col's tiles to run side by side (None where the layer does not take that,
    :func:`_col_threaded`), and to run one after another (``now``: :func:`settings`)."""
    threaded = None
    if _col_threaded(geometry, batch):  # side by side, the tiles write disjoint output rows
        threaded = _col_tiles(geometry, batch, _col_budget(geometry, batch, True), True, COL_ROW_GROUPS_GAIN)
    # on 1-D data, always (col2im_1d)
    return threaded, _col_tiles(geometry, batch, _col_budget(geometry, batch, False), geometry.rank == 1,
                                 COL_ROW_GROUPS_GAIN)


def _col_run(src: np.ndarray, kernel: np.ndarray, geometry: Geometry, bias, out, tables: tuple,
             threaded: tuple | None, tiles: tuple, first: np.ndarray | None = None) -> np.ndarray:
    """Transposed convolution, per tile and group: one wide product of the input with
    every tap at once, ``(cells, C_in) @ (C_in, taps * C_out)`` with the kernel as it lies
    (views), then each output cell sums the columns of the taps that reach it (compiled
    col2im, bias fused; written once, or added to by later kernel-row groups). ``tables``,
    ``threaded`` and ``tiles``: :attr:`Prepared.col`; the ``threaded`` tiles, side by side,
    where the layer takes them and the cores are idle (:func:`_side_by_side_now`).
    ``first``: ``src`` is channels-first, read in place (:func:`_col_sources`), and each
    tile that finishes output rows moves them into ``first`` (:func:`_moved_rows`)."""
    g = geometry
    dtype = out.dtype
    taps_k_row = math.prod(g.kernel_shape) // g.kernel_shape[0]
    groups, cs, cd = g.groups, g.input_channels, g.output_channels
    cs_g, cd_g = cs // groups, cd // groups
    # per group, rows (tap, C_out/groups) by C_in/groups: views of (taps, C_out/g, groups, C_in/g)
    weights = kernel.reshape(-1, cd_g, groups, cs_g)
    rest = g.input_spatial[1:] + (1,) * (3 - g.rank)
    row_cells = math.prod(rest)
    out3, out_cells = _as3d(out, g.rank), _cells_view(out, g.rank)
    b = _zeros(cd, dtype) if bias is None else bias

    def tile(task: tuple) -> None:
        (n0, n1, r0, r1, k0, k1, j0, j1), merged = task
        taps = (k1 - k0) * taps_k_row
        for group in range(groups):
            x_g = _col_sources(src, n0, n1, j0, j1, group * cs_g, (group + 1) * cs_g, first is not None)
            w_g = weights[k0 * taps_k_row:k1 * taps_k_row, :, group].reshape(-1, cs_g)
            col = _col_product(x_g, w_g, dtype)
            channels = slice(group * cd_g, (group + 1) * cd_g)
            if g.rank == 1:  # tiles of every tap over disjoint cells: each cell written once
                compiled.col2im_1d(col.reshape(n1 - n0, j1 - j0, taps, cd_g), out[..., channels], *tables[:3],
                                   n0, r0, r1, j0, b[channels])
            elif merged is not None and out_cells is not None and col.flags.c_contiguous:
                compiled.col2im(col.reshape(n1 - n0, j1 - j0, row_cells * taps, cd_g), out_cells[..., channels],
                                *tables[:3], *merged, k1 - k0, taps_k_row, n0, r0, r1, k0, j0, b[channels])
            else:
                col = col.reshape((n1 - n0, j1 - j0) + rest + (taps, cd_g))
                compiled.col2im_strided(col, out3[..., channels], *tables, n0, r0, r1, k0, j0, b[channels])
            del col
        if first is not None and k1 == g.kernel_shape[0]:  # the last of these rows' kernel rows: done
            _moved_rows(out, first, n0, n1, r0, r1, 0, cd)

    side_by_side = _side_by_side_now(threaded is not None)
    threads.run(threaded if side_by_side else tiles, tile, side_by_side)
    return out


def _col_product(x: np.ndarray | list, w: np.ndarray, dtype) -> np.ndarray:
    """A tile's columns ``x @ w.T`` (cells by taps x channels) in a scratch buffer; for a tile
    of few cells, the transposed product ``(w @ x.T).T`` (OpenBLAS runs it faster there),
    which col2im then reads strided (reshapes of it stay views). ``x``: the tile's cells by
    input channels, or a list of such blocks stacked (:func:`_col_sources`), one product each."""
    blocks = x if isinstance(x, list) else [x]
    bounds = list(itertools.accumulate((block.shape[0] for block in blocks), initial=0))
    few = bounds[-1] <= COL_FEW_CELLS
    product = workspace.scratch((w.shape[0], bounds[-1]) if few else (bounds[-1], w.shape[0]), dtype)
    for block, a, b in zip(blocks, bounds, bounds[1:]):
        if few:
            np.matmul(w, block.T, out=product[:, a:b])
        else:
            np.matmul(block, w.T, out=product[a:b])
    return product.T if few else product


def _col_sources(src: np.ndarray, n0: int, n1: int, j0: int, j1: int, c0: int, c1: int,
                 channels_first: bool) -> np.ndarray | list:
    """Input channels ``c0:c1`` of rows ``j0:j1`` of items ``n0:n1`` as cells by channels:
    of channels-last data one matrix (a view where ``src`` is C-contiguous), of
    channels-first data one transposed view per item (``(channels, cells)`` as it lies, which
    BLAS reads transposed), for :func:`_col_product`."""
    if not channels_first:
        return src[n0:n1, j0:j1].reshape(-1, src.shape[-1])[:, c0:c1]
    return [src[n, c0:c1, j0:j1].reshape(c1 - c0, -1).T for n in range(n0, n1)]


def _moved_rows(out: np.ndarray, first: np.ndarray, n0: int, n1: int, r0: int, r1: int, c0: int, c1: int) -> None:
    """Output rows ``r0:r1`` of items ``n0:n1``, channels ``c0:c1``, finished in the
    channels-last ``out``, moved into the channels-first ``first`` while a tile's writes
    still hold them in cache: per item a transpose of ``(cells, channels)`` by OpenBLAS's
    (:func:`blas.transpose`)."""
    for n in range(n0, n1):
        blas.transpose(out[n, r0:r1].reshape(-1, out.shape[-1])[:, c0:c1], first[n, c0:c1, r0:r1].reshape(c1 - c0, -1))


def kernel_lies(kernel: np.ndarray) -> bool:
    """Whether ``kernel``, in the neutral layout (``(*k, C_in/groups, C_out)`` forward,
    ``(*k, C_out/groups, C_in)`` transposed), is the view of a C-contiguous array in PyTorch's
    and ONNX's layout (``(C_out, C_in/groups, *k)`` forward, ``(C_in, C_out/groups, *k)``
    transposed), its two leading axes moved last (:func:`numpy.moveaxis`): the torch and
    onnx dialects' kernels."""
    return (kernel.ndim >= 3 and not kernel.flags.c_contiguous
            and np.moveaxis(kernel, (-1, -2), (0, 1)).flags.c_contiguous)


@functools.lru_cache(maxsize=256)
def _col_lies_tiles(geometry: Geometry, batch: int, budget: int) -> tuple | None:
    """Tiles ``(n0, n1, c0, c1)`` of batch items and output channels (of each group) for
    :func:`_col_lies_run`, each tile every tap over whole items (so 1-D tiles write disjoint
    cells): at most ``budget`` elements of columns, chosen so that BLAS packs its operands
    least (the kernel once per block of items, the input once per block of channels; ties to
    more channels, then more items), the blocks as even as their count allows. None where
    one channel of one item does not fit (the layer then takes col's own tiles, on a copy)."""
    g = geometry
    cd_g = g.output_channels // g.groups
    per_channel = math.prod(g.input_spatial) * math.prod(g.kernel_shape)  # one item's columns
    kernel = math.prod(g.neutral_kernel_shape)
    source = batch * math.prod(g.input_spatial) * g.input_channels
    best = None
    for fits in range(cd_g, 0, -1):  # channels a block; with them, as many items as fit
        items = min(batch, budget // (fits * per_channel))
        if items < 1:
            continue
        item_blocks, channel_blocks = -(-batch // items), -(-cd_g // fits)
        cost = (item_blocks * kernel + channel_blocks * source, channel_blocks, item_blocks)
        if best is None or cost < best[0]:
            best = cost, item_blocks, channel_blocks
    if best is None:
        return None
    _, item_blocks, channel_blocks = best
    items, channels = -(-batch // item_blocks), -(-cd_g // channel_blocks)
    return tuple((n0, min(batch, n0 + items), c0, min(cd_g, c0 + channels))
                 for n0 in range(0, batch, items) for c0 in range(0, cd_g, channels))


def _col_lies_temporary_elements(geometry: Geometry, tiles: tuple) -> int:
    """The largest tile's columns and its input block (copied where the input is not
    contiguous), the int64 tables (two float32 elements a cell), the bias."""
    g = geometry
    cells, taps = math.prod(g.input_spatial), math.prod(g.kernel_shape)
    tile = max((n1 - n0) * cells * ((c1 - c0) * taps + g.input_channels) for n0, n1, c0, c1 in tiles)
    return tile + _table_elements(g, pairs=False) + g.output_channels


def _col_lies_run(src: np.ndarray, kernel: np.ndarray, geometry: Geometry, bias, out, tiles: tuple,
                  first: np.ndarray | None = None) -> np.ndarray:
    """:func:`_col_run` with the kernel as it lies in PyTorch's layout (:func:`kernel_lies`):
    per group, ``(C_in/g, C_out/g * taps)``, a matrix as it is, whose columns run over the
    taps within each output channel. A tile (:func:`_col_lies_tiles`) multiplies its items
    with a block of those columns (the taps of a block of channels), and col2im reads its
    columns with the taps' stride. Tiles run one after another, each product on BLAS's
    threads. ``first``: as :func:`_col_run`'s, each tile finishing its channels of its items."""
    g = geometry
    dtype = out.dtype
    taps = math.prod(g.kernel_shape)
    groups, cs, cd = g.groups, g.input_channels, g.output_channels
    cs_g, cd_g = cs // groups, cd // groups
    tables = _col_tables(g)
    weights = np.moveaxis(kernel, (-1, -2), (0, 1)).reshape(groups, cs_g, cd_g * taps)
    rest = g.input_spatial[1:] + (1,) * (3 - g.rank)
    out3 = _as3d(out, g.rank)
    b = _zeros(cd, dtype) if bias is None else bias
    for n0, n1, c0, c1 in tiles:
        for group in range(groups):
            x_g = _col_sources(src, n0, n1, 0, g.input_spatial[0], group * cs_g, (group + 1) * cs_g,
                               first is not None)
            col = _col_product(x_g, weights[group, :, c0 * taps:c1 * taps].T, dtype)
            # (cells, channels, taps) read as (cells, taps, channels)
            col = col.reshape((n1 - n0,) + g.input_spatial + (c1 - c0, taps)).swapaxes(-1, -2)
            channels = slice(group * cd_g + c0, group * cd_g + c1)
            if g.rank == 1:
                compiled.col2im_1d(col, out[..., channels], *tables[:3], n0, 0, g.output_spatial[0], 0,
                                   b[channels])
            else:
                col = col.reshape((n1 - n0, g.input_spatial[0]) + rest + (taps, c1 - c0))
                compiled.col2im_strided(col, out3[..., channels], *tables, n0, 0, g.output_spatial[0], 0, 0,
                                        b[channels])
            del col
            if first is not None:
                _moved_rows(out, first, n0, n1, 0, g.output_spatial[0], channels.start, channels.stop)
    return out


@functools.lru_cache(maxsize=64)
def _zeros(n: int, dtype: np.dtype) -> np.ndarray:
    """A read-only zero bias of ``n`` channels, made once."""
    zeros = np.zeros(n, dtype)
    zeros.flags.writeable = False
    return zeros


def _cell_run(n0: int, n1: int, r0: int, r1: int, spatial: tuple[int, ...]) -> slice:
    """The cells of tile ``(n0, n1, r0, r1)`` (whole items, or rows ``r0:r1`` of one item,
    of arrays ``(N, *spatial, C)``) as one run of the ``(cells, C)`` view: a tile of
    :func:`_tiles` is contiguous there."""
    rows, row_cells = spatial[0], math.prod(spatial[1:])
    return slice((n0 * rows + r0) * row_cells, ((n1 - 1) * rows + r1) * row_cells)


def _im2col_ready(geometry: Geometry) -> bool:
    """Whether the compiled "im2col" path runs this layer: a forward convolution whose
    columns per output cell (taps x C_in) are at most IM2COL_MAX_COLUMNS times its output
    channels, or of a stride above 1 and at most IM2COL_STRIDED_MAX_CHANNELS input
    channels; or grouped (a gather and a product per group), unless of few channels a group
    (the direct loop, :func:`_grouped_ready`); Numba present, small tables, one output row's
    columns bounded; a kernel of one tap only where forced (its gather would be a copy of
    the input: a 1x1 96x128x32->23 took 0.64 ms through im2col, 0.27 through shift's one
    product).

    Grouped layers came here from concat, where accumulate does not take them (strided),
    faster on every one measured (sixteenth session, in process, alternating, medians of 15,
    ms, im2col / concat): 3x3 s2 28x28x64 in 2 groups 0.13 / 0.46, 56x56x128 in 4 0.85 /
    1.19, 28x28x256 in 8 0.48 / 0.51, 14x14x512 in 2 1.61 / 2.78, 28x28x128 in 2 b8 4.1 /
    4.9, 3-D 16^3x64 in 4 0.57 / 2.88, 1-D 2048x64 k5 in 2 b4 3.2 / 5.3."""
    g = geometry
    if g.transposed or not compiled.available() or _col_tables(g) is None:
        return False
    columns = math.prod(g.kernel_shape) * (g.input_channels // g.groups)  # a group's
    if MODE is None and math.prod(g.kernel_shape) == 1:
        return False
    if MODE is None and g.groups > 1 and _grouped_ready(g):
        return False
    if MODE is None and g.groups == 1:
        strided_narrow = any(a.stride > 1 for a in g.axes) and g.input_channels <= IM2COL_STRIDED_MAX_CHANNELS
        if columns > IM2COL_MAX_COLUMNS * g.output_channels and not strided_narrow:
            return False
    return columns * math.prod(g.output_spatial[1:]) <= COL_MAX_ROW


def _im2col_threaded(geometry: Geometry, batch: int) -> bool:
    """Whether "im2col" runs its tiles side by side (narrow layers of a large output)."""
    return _narrow_threaded(geometry, batch, IM2COL_THREADS_MAX_KERNEL, IM2COL_THREADS_MIN_OUTPUT)


def _im2col_tiles(geometry: Geometry, batch: int, side_by_side: bool) -> list[tuple[int, int, int, int]]:
    """Tiles ``(n0, n1, r0, r1)`` of whole items or output rows of one item whose columns
    hold at most :func:`_col_budget` elements (at least one row), shared among the cores
    where the tiles run ``side_by_side``."""
    g = geometry
    lattice = tuple((0, 1, n) for n in g.output_spatial)
    per_cell = math.prod(g.kernel_shape) * (g.input_channels // g.groups)  # one group's
    budget = _col_budget(g, batch, False)
    if side_by_side:  # a share each, and at least a tile per core
        cores = threads.workers()
        budget = min(budget // cores, -(-batch * math.prod(g.output_spatial) // cores) * per_cell)
    return _tiles(batch, lattice, per_cell, budget)


def _im2col_temporary_elements(geometry: Geometry, batch: int) -> int:
    """The largest tile's columns and its product (stored apart only where ``out`` is not
    C-contiguous, channels-first), one per core where the tiles run side by side, whichever
    way the call runs them; the int64 tables (two float32 elements a cell), the bias."""
    g = geometry
    per_cell = math.prod(g.kernel_shape) * (g.input_channels // g.groups) + g.output_channels

    def in_flight(side_by_side: bool) -> int:
        tiles = _im2col_tiles(g, batch, side_by_side)
        cells = max((n1 - n0) * (r1 - r0) for n0, n1, r0, r1 in tiles) * math.prod(g.output_spatial[1:])
        return (min(threads.workers(), len(tiles)) if side_by_side else 1) * cells * per_cell

    threaded = in_flight(True) if _im2col_threaded(g, batch) else 0
    return max(in_flight(False), threaded) + _table_elements(g) + _runs_elements(g) + g.output_channels


def _im2col_gather(src: np.ndarray, geometry: Geometry):
    """``gather(cols, n0, r0, c0=0)``: compiled im2col of ``src`` (channels-last, ``(N,
    *size, C)``) into ``cols`` ``(n, rows, *rest, taps, c)``, channels ``c0 .. c0 + c`` (a
    group's, or all) of the cells of batch items ``n0..`` and output rows ``r0..`` of
    ``geometry`` (a forward convolution's tables), zeros where a tap reads padding. By runs
    (:func:`compiled.im2col`, :func:`_col_runs`) where a row's cells and channels lie in one
    run (:func:`_flat_cells`); else on the per-axis tables (:func:`compiled.im2col_strided`),
    a copy per (cell, tap) pair.

    Runs, in process, alternating, the gather alone, ms, runs / per pair / NumPy views
    (sixteenth session, AMD EPYC; the views, each leading tap's window one strided copy, were
    the first layers' gather until then): 224x224x3->64 k7 s2 (half the rows) 0.36 / 0.89 /
    0.46; 96x128x3->32 (half) 0.13 / 0.19 / 0.14; 40x40x16->64 k5 s2 b4 0.09 / 0.15 / 0.18;
    56x56x64->128 s2 0.05 / 0.09 / 0.13; 3-D 16^3x32 s2 b2 0.10 / 0.13 / 0.29; 16^3x1->16
    0.14 / 0.23 / 0.28; grey 128x128x1->32 b2 (runs of 3 values) 0.32 / 0.42 / 0.30."""
    g = geometry
    tables, runs, flat = _col_tables(g), _col_runs(g), _flat_cells(src, g.rank)
    if runs is None or flat is None or not flat.size:
        src3 = _as3d(src, g.rank)

        def pairs(cols: np.ndarray, n0: int, r0: int, c0: int = 0) -> None:
            compiled.im2col_strided(src3[..., c0:c0 + cols.shape[-1]], cols, *tables, n0, r0)
        return pairs
    c = src.shape[-1]
    if g.rank == 1:  # an item is one row; the tile's output cells are the cells of its runs
        one_row = tuple(np.zeros((1, 1), np.int64) if i else np.ones(1, np.int64) for i in range(3))

        def gather_1d(cols: np.ndarray, n0: int, r0: int, c0: int = 0) -> None:
            n, cells = cols.shape[:2]
            own = tuple(t[r0:r0 + cells] for t in runs)
            compiled.im2col(flat, cols.reshape(n, 1, cells, -1), *one_row, *own, 0, cols.shape[-1], c, c0, n0, 0)
        return gather_1d
    row_taps = math.prod(g.kernel_shape[1:])

    def gather(cols: np.ndarray, n0: int, r0: int, c0: int = 0) -> None:
        merged = cols.reshape(cols.shape[:2] + (-1, cols.shape[-2] * cols.shape[-1]))  # scratch: C-contiguous
        compiled.im2col(flat, merged, *tables[:3], *runs, row_taps, cols.shape[-1], c, c0, n0, r0)
    return gather


def _im2col_run(src: np.ndarray, kernel: np.ndarray, geometry: Geometry, bias, out) -> np.ndarray:
    """Forward convolution of few input channels per output channel, per tile: the taps'
    source cells gathered side by side (compiled im2col, zeros where a tap reads padding),
    then one product ``(cells, taps * C_in) @ (taps * C_in, C_out)`` with the kernel as it
    lies, straight into the output where it is C-contiguous. Grouped: per group, its
    channels gathered and one product with its block of the kernel, into its outputs."""
    g = geometry
    dtype = np.result_type(src, kernel)
    taps, groups = math.prod(g.kernel_shape), g.groups
    cs, cd = g.input_channels // groups, g.output_channels // groups
    w = kernel.reshape(taps * cs, groups * cd)
    rest = g.output_spatial[1:] + (1,) * (3 - g.rank)
    out_cells = out.reshape(-1, groups * cd) if out.flags.c_contiguous else None
    gather = _im2col_gather(src, g)

    def tile(bounds: tuple) -> None:
        n0, n1, r0, r1 = bounds
        cols = workspace.scratch((n1 - n0, r1 - r0) + rest + (taps, cs), dtype)
        cells = _cell_run(n0, n1, r0, r1, g.output_spatial)
        for group in range(groups):
            gather(cols, n0, r0, group * cs)
            product = cols.reshape(-1, taps * cs)
            outputs = slice(group * cd, (group + 1) * cd)
            if out_cells is not None:
                np.matmul(product, w[:, outputs], out=out_cells[cells, outputs])
            else:
                dst = out[n0:n1, r0:r1, ..., outputs]
                dst[...] = (product @ w[:, outputs]).reshape(dst.shape)
        if bias is not None:  # every group's channels at once
            dst = out[n0:n1, r0:r1] if out_cells is None else out_cells[cells]
            dst += bias

    side_by_side = _side_by_side_now(_im2col_threaded(g, src.shape[0]))
    threads.run(_im2col_tiles(g, src.shape[0], side_by_side), tile, side_by_side)  # disjoint cells
    return out


def _im2col_lies_tiles(geometry: Geometry, batch: int) -> tuple | None:
    """Tiles ``(n0, n1, r0, r1)`` for :func:`_im2col_lies_run` (:func:`_tiles`), one group's
    columns at most :func:`_col_budget` or the kernel's size, whichever is larger (up to
    COL_MAX_TILE): no more than the copy of the kernel this path saves would hold, and
    wide products (held to the output's budget, 6x8x512->512 ran six products of 8 cells:
    8.9 ms against 3.4 in one); or None where the layer does not take that path: a forward
    layer whose kernel holds fewer than :data:`IM2COL_LIES_MIN_RATIO` times the values the
    gather copies (copying the kernel is then cheaper), no compiled loops, large tables, or
    one output row's columns past COL_MAX_ROW."""
    g = geometry
    taps, cs_g = math.prod(g.kernel_shape), g.input_channels // g.groups
    gathered = batch * math.prod(g.output_spatial) * taps * g.input_channels
    if (g.transposed or not compiled.available() or _col_tables(g) is None
            or math.prod(g.neutral_kernel_shape) < IM2COL_LIES_MIN_RATIO * gathered
            or taps * cs_g * math.prod(g.output_spatial[1:]) > COL_MAX_ROW):
        return None
    lattice = tuple((0, 1, n) for n in g.output_spatial)
    budget = max(_col_budget(g, batch, False), min(math.prod(g.neutral_kernel_shape), COL_MAX_TILE))
    return tuple(_tiles(batch, lattice, taps * cs_g, budget))


def _im2col_lies_temporary_elements(geometry: Geometry, tiles: tuple) -> int:
    """The largest tile's columns (one group's), the int64 tables (two float32 elements a
    cell), the bias."""
    g = geometry
    cells = max((n1 - n0) * (r1 - r0) for n0, n1, r0, r1 in tiles) * math.prod(g.output_spatial[1:])
    return cells * math.prod(g.kernel_shape) * (g.input_channels // g.groups) + _table_elements(g) + g.output_channels


def _im2col_lies_run(src: np.ndarray, kernel: np.ndarray, geometry: Geometry, bias, out, tiles: tuple) -> np.ndarray:
    """Forward convolution with the kernel as it lies in PyTorch's layout (:func:`kernel_lies`):
    per group, ``(C_out/g, C_in/g * taps)`` is a matrix as it is, its columns running over
    the taps within each input channel. Per tile (:func:`_im2col_lies_tiles`) and group, the
    taps' source cells are gathered in that order, ``(cells, C_in/g, taps)`` (compiled
    :func:`~tconv.kernels.compiled.im2col_strided` writing through a view with its last two
    axes swapped; zeros where a tap reads padding), then one product with the kernel as it
    lies, straight into the output where it is C-contiguous. Saves the copy of the kernel
    (the 512x512x3x3 kernel took 4-9 ms to copy on the AMD machine)."""
    g = geometry
    dtype = out.dtype
    taps, groups, cs, cd = math.prod(g.kernel_shape), g.groups, g.input_channels, g.output_channels
    cs_g, cd_g = cs // groups, cd // groups
    weights = np.moveaxis(kernel, (-1, -2), (0, 1)).reshape(groups, cd_g, cs_g * taps)
    tables = _col_tables(g)
    src3 = _as3d(src, g.rank)
    rest = g.output_spatial[1:] + (1,) * (3 - g.rank)
    out_cells = out.reshape(-1, cd) if out.flags.c_contiguous else None
    for n0, n1, r0, r1 in tiles:
        cols = workspace.scratch((n1 - n0, r1 - r0) + rest + (cs_g, taps), dtype)
        for group in range(groups):
            channels = slice(group * cs_g, (group + 1) * cs_g)
            compiled.im2col_strided(src3[..., channels], cols.swapaxes(-1, -2), *tables, n0, r0)
            product = cols.reshape(-1, cs_g * taps)
            outputs = slice(group * cd_g, (group + 1) * cd_g)
            if out_cells is not None:
                dst = out_cells[_cell_run(n0, n1, r0, r1, g.output_spatial), outputs]
                np.matmul(product, weights[group].T, out=dst)
            else:
                dst = out[n0:n1, r0:r1, ..., outputs]
                dst[...] = (product @ weights[group].T).reshape(dst.shape)
        if bias is not None:  # over every group's channels at once: added into a strided group's
            # block, NumPy's iterator buffers (185 kB for 60 cells of 128 of 256 channels)
            dst = out[n0:n1, r0:r1] if out_cells is None else out_cells[_cell_run(n0, n1, r0, r1, g.output_spatial)]
            dst += bias
    return out


# ------------------------------------------------------------------------ rows


def _rows_ready(geometry: Geometry) -> bool:
    """Whether "rows" runs this layer: a forward convolution without groups on 2-D data,
    unit stride down the rows (each kernel row then reads a run of the gathered rows), with
    at least ROWS_MIN_CELLS output cells an item."""
    g = geometry
    if g.transposed or g.groups > 1 or g.rank != 2 or g.axes[0].stride != 1:
        return False
    return MODE is not None or math.prod(g.output_spatial) >= ROWS_MIN_CELLS


def _rows_spans(geometry: Geometry) -> tuple[list[tuple[int, int]], int, int]:
    """Per kernel row that reaches any output row, ``(k, offset)``: output row ``o`` reads
    input row ``o + offset`` (unit stride, from :meth:`AxisGeometry.tap_span`); the least
    and the greatest offset."""
    a = geometry.axes[0]
    spans = []
    for k in range(a.kernel):
        start, stop, first = a.tap_span(k)
        if stop > start:
            spans.append((k, first - start))
    offsets = [off for _, off in spans] or [0]
    return spans, min(offsets), max(offsets)


def _rows_step(geometry: Geometry, batch: int, side_by_side: bool) -> int:
    """Output rows per step of a "rows" tile: the step's gather and the products of its
    gathered rows (those rows plus the kernel's reach) within ROWS_TILE_ELEMENTS (to stay in
    the L2 of the core that runs it) and within COL_TILE_PER_OUTPUT times the output, that
    shared among the cores where tiles run ``side_by_side``; at least one.

    Each core has an L2 of its own, so side by side a step keeps the whole
    ROWS_TILE_ELEMENTS (tenth session; it was shared among the cores too): steps twice as
    tall, half as many, and half the Python between products that the two threads take
    turns at (the GIL). In the benchmark's protocol, five alternating rounds, ms:
    96x128x32->32 b8 11.2-12.0 against 12.1-13.8, 48x64x64->64 b8 8.6-9.1 against 9.1-9.6,
    96x128x32->32 b1 1.93-2.14 against 1.95-2.35; temporaries of the 96x128 layers at b1 up
    from 0.75 to 1.44-1.48 times the output."""
    g = geometry
    spans, lo, hi = _rows_plan(g)[:3]
    width = g.output_spatial[1]
    gather, product = width * g.kernel_shape[1] * g.input_channels, width * len(spans) * g.output_channels
    out = batch * math.prod(g.output_spatial) * g.output_channels
    budget = min(ROWS_TILE_ELEMENTS, int(COL_TILE_PER_OUTPUT * out) // (threads.workers() if side_by_side else 1))
    return max(1, min(g.output_spatial[0], (budget - (hi - lo) * product) // (gather + product)))


def _narrow_threaded(geometry: Geometry, batch: int, max_kernel: int, min_output: int) -> bool:
    """Whether a forward path ("rows", "shift") runs its tiles side by side: narrow layers
    (a kernel of at most ``max_kernel`` elements) with an output of at least ``min_output``."""
    g = geometry
    return (SIDE_BY_SIDE and math.prod(g.kernel_shape) * g.input_channels * g.output_channels <= max_kernel
            and batch * math.prod(g.output_spatial) * g.output_channels >= min_output
            and threads.available())


def _rows_threaded(geometry: Geometry, batch: int) -> bool:
    """Whether "rows" runs its tiles side by side."""
    return _narrow_threaded(geometry, batch, ROWS_THREADS_MAX_KERNEL, ROWS_THREADS_MIN_OUTPUT)


@functools.lru_cache(maxsize=256)
def _rows_plan(geometry: Geometry) -> tuple:
    """What "rows" works out once per layer: :func:`_rows_spans`; per kernel row reaching
    an output row, the gathered row its first output row reads (``offset - lo``); per
    kernel column, :meth:`~tconv.geometry.AxisGeometry.tap_span` (the NumPy gather's); and
    the tables under which :func:`compiled.im2col` gathers, or None where there are none:
    first-axis tables (:func:`_col_tables`' form) in which gathered row ``v`` reads input
    row ``v + lo`` through tap 0 (nothing outside the input), then :func:`_col_runs`."""
    g = geometry
    spans, lo, hi = _rows_spans(g)
    shifts = np.array([offset - lo for _, offset in spans], np.int64)
    columns = tuple(g.axes[1].tap_span(t) for t in range(g.kernel_shape[1]))
    tables = None
    if _col_tables(g) is not None and _col_runs(g) is not None:
        rows = np.arange(g.output_spatial[0] + hi - lo) + lo
        inside = (rows >= 0) & (rows < g.axes[0].size)
        tables = (inside.astype(np.int64), np.zeros((rows.size, 1), np.int64),
                  np.where(inside, rows, 0).astype(np.int64)[:, None]) + _col_runs(g)
    return spans, lo, hi, shifts, columns, tables


def _rows_tiles(geometry: Geometry, batch: int, side_by_side: bool) -> list[tuple[int, int, int]]:
    """Tiles ``(n, r0, r1)``: whole items, or, side by side on fewer items than cores, each
    item's rows in one run per core (a tile's steps reuse the products they share)."""
    rows = geometry.output_spatial[0]
    parts = -(-threads.workers() // batch) if side_by_side else 1
    size = -(-rows // parts)
    return [(n, r0, min(rows, r0 + size)) for n in range(batch) for r0 in range(0, rows, size)]


def _rows_temporary_elements(geometry: Geometry, batch: int) -> int:
    """Per tile in flight (one per core side by side): a step's gather and the products of
    its gathered rows, and its sum where ``out`` is not C-contiguous (counted always); the
    kernel rows side by side (one copy a call, where there are two or more); the tables
    of the compiled gather; the bias."""
    g = geometry
    spans, lo, hi, *_, tables = _rows_plan(g)  # tables: the gather's first-axis ones, then col's pairs
    width = g.output_spatial[1]

    def tiles(side_by_side: bool) -> int:
        step = _rows_step(g, batch, side_by_side)
        in_flight = threads.workers() if side_by_side else 1
        return in_flight * width * (step * g.kernel_shape[1] * g.input_channels
                                    + (step + hi - lo) * len(spans) * g.output_channels + step * g.output_channels)

    wide = g.kernel_shape[1] * g.input_channels * len(spans) * g.output_channels if len(spans) > 1 else 0
    tables = _table_elements(g) + _runs_elements(g) + 2 * sum(t.size for t in tables[:3]) if tables is not None else 0
    # whichever way the call runs them (_side_by_side_now)
    return (max(tiles(False), tiles(True) if _rows_threaded(g, batch) else 0) + wide + tables
            + g.output_channels)


def _rows_run(src: np.ndarray, kernel: np.ndarray, geometry: Geometry, bias, out) -> np.ndarray:
    """Forward 2-D convolution, unit stride down the rows. Per step of output rows, the
    input rows it reads are gathered with each row's kernel-width taps side by side,
    ``(rows, width, kw * C_in)`` (zeros where a tap reads padding), and multiplied by every
    kernel row at once, ``(cells, kw * C_in) @ (kw * C_in, kh * C_out)``; each output row
    then sums the products of the kernel rows that reach it, each from the gathered row it
    reaches (compiled where Numba is installed, else NumPy adds: the same sums in the same
    order, bias first). A tile (an item, or a run of its rows) takes its steps in order and
    keeps the products of the gathered rows the next step shares (kh - 1 for a 3x3), so no
    row is gathered or multiplied twice. One product over a kw-times-wider inner dimension
    and a kh-times-wider output instead of one per tap: (cells, 96) @ (96, 96) ran 1.4x
    faster than (cells, 288) @ (288, 32) and nine (cells, 32) @ (32, 32) (96x128x32->32)."""
    g = geometry
    dtype = np.result_type(src, kernel)
    a0, a1 = g.axes
    cs, cd = g.input_channels, g.output_channels
    kw = g.kernel_shape[1]
    rows_out, width = g.output_spatial
    spans, lo, hi, shifts, columns, tables = _rows_plan(g)
    reach = hi - lo  # gathered rows a step shares with the next
    batch = src.shape[0]
    side_by_side = _side_by_side_now(_rows_threaded(g, batch))
    step = _rows_step(g, batch, side_by_side)
    w = kernel.reshape(g.kernel_shape[0], kw * cs, cd)
    if len(spans) == 1:  # the kernel rows that reach an output row, side by side
        wide = w[spans[0][0]]
    elif len(spans) == g.kernel_shape[0]:
        wide = np.ascontiguousarray(w.transpose(1, 0, 2)).reshape(kw * cs, -1)
    else:
        wide = np.ascontiguousarray(w[[k for k, _ in spans]].transpose(1, 0, 2)).reshape(kw * cs, -1)
    out3 = out.reshape(-1, width, cd) if out.flags.c_contiguous else None
    b = _zeros(cd, dtype) if bias is None else bias
    src_cells = _flat_cells(src, 2)
    fast = tables is not None and src_cells is not None and compiled.available()

    def gather_rows(n: int, v0: int, v1: int, into: np.ndarray) -> None:
        """Gathered rows ``v0 <= v < v1`` (input rows ``v + lo``) of item ``n`` into ``into``."""
        if fast:
            compiled.im2col(src_cells, into.reshape(1, v1 - v0, width, kw * cs), *tables, kw, cs, cs, 0, n, v0)
            return
        i0, i1 = max(0, v0 + lo), min(a0.size, v1 + lo)
        into[:max(0, i0 - v0 - lo)] = 0
        into[max(0, i1 - v0 - lo):] = 0
        if i1 > i0:
            rows = slice(i0 - v0 - lo, i1 - v0 - lo)
            for t, (start, stop, first) in enumerate(columns):
                into[rows, :start, t] = 0
                into[rows, stop:, t] = 0
                if stop > start:
                    last = first + (stop - start - 1) * a1.stride
                    into[rows, start:stop, t] = src[n, i0:i1, first:last + 1:a1.stride]

    def tile(bounds: tuple) -> None:
        n, r0, r1 = bounds
        gather = workspace.scratch((step, width, kw, cs), dtype, slot=0)
        products = workspace.scratch((step + reach, width, len(spans), cd), dtype, slot=1)
        flat = products.reshape(step + reach, -1)
        for a in range(r0, r1, step):
            z = min(r1, a + step)
            if out3 is not None:
                dst = out3[n * rows_out + a:n * rows_out + z]
            else:
                dst = workspace.scratch((z - a, width, cd), dtype, slot=2)
            if not spans:
                dst[...] = b
            else:
                # products[v] holds gathered row a + v: a tile's first step makes them all,
                # later ones take the previous step's last ``reach`` (it was a whole step)
                keep = 0 if a == r0 else reach
                if keep:
                    flat[:keep] = flat[step:step + keep]
                for c0 in range(a + keep, z + reach, step):  # (the gather holds a step's rows)
                    c1 = min(z + reach, c0 + step)
                    gather_rows(n, c0, c1, gather[:c1 - c0])
                    np.matmul(gather[:c1 - c0].reshape(-1, kw * cs), wide,
                              out=flat[c0 - a:c1 - a].reshape(-1, len(spans) * cd))
                part = products[:z - a + reach]
                if fast:
                    compiled.rows_sum(part, dst, shifts, b)
                else:
                    np.add(b, part[shifts[0]:shifts[0] + z - a, :, 0], out=dst)
                    for i in range(1, len(spans)):
                        dst += part[shifts[i]:shifts[i] + z - a, :, i]
            if out3 is None:
                out[n, a:z] = dst

    threads.run(_rows_tiles(g, batch, side_by_side), tile, side_by_side)  # tiles write their own rows
    return out


# ----------------------------------------------------------------- shift (NumPy)


def _shift_ready(geometry: Geometry) -> bool:
    """Whether "shift" runs this layer: a forward convolution without groups on 1-D or 2-D
    data, every stride 1 (a tap then reads its rows as one contiguous run), with at least
    SHIFT_MIN_CHANNELS input channels and input rows at most SHIFT_MAX_WASTE times as wide
    as the output's."""
    g = geometry
    if g.transposed or g.groups > 1 or g.rank > 2 or any(a.stride != 1 for a in g.axes):
        return False
    if MODE is not None:
        return True
    wide = g.rank == 1 or g.input_spatial[1] <= SHIFT_MAX_WASTE * g.output_spatial[1]
    return g.input_channels >= SHIFT_MIN_CHANNELS and wide


def _shift_threaded(geometry: Geometry, batch: int) -> bool:
    """Whether "shift" runs its tiles side by side."""
    return _narrow_threaded(geometry, batch, SHIFT_THREADS_MAX_KERNEL, SHIFT_THREADS_MIN_OUTPUT)


def _shift_rows(geometry: Geometry) -> tuple[int, int, int, int]:
    """Output rows, output row width, input rows and input row width of the 2-D view (rank
    1: one row of cells per item, each cell a row of width 1)."""
    g = geometry
    if g.rank == 1:
        return g.output_spatial[0], 1, g.input_spatial[0], 1
    return g.output_spatial[0], g.output_spatial[1], g.input_spatial[0], g.input_spatial[1]


@functools.lru_cache(maxsize=256)
def _shift_tiles(geometry: Geometry, batch: int, budget: int) -> tuple:
    """Tiles ``(n0, n1, r0, r1)``: whole items (each tap's product over all their rows)
    where an item's product fits ``budget``, else output rows of one item (each tap's
    product over the input rows it reads there), at least one row."""
    g = geometry
    rows_out, _, rows_in, width = _shift_rows(g)
    item = rows_in * width * g.output_channels
    if item <= budget:
        step = budget // item
        return tuple((n0, min(batch, n0 + step), 0, rows_out) for n0 in range(0, batch, step))
    step = max(1, budget // (width * g.output_channels))
    return tuple((n, n + 1, r0, min(rows_out, r0 + step)) for n in range(batch) for r0 in range(0, rows_out, step))


def _shift_budget(geometry: Geometry, batch: int, side_by_side: bool) -> int:
    """Elements of one tile's product: SHIFT_TILE_ELEMENTS, at most the output's, shared
    among the cores where tiles run ``side_by_side``; at least one input row."""
    g = geometry
    out = batch * math.prod(g.output_spatial) * g.output_channels
    cores = threads.workers() if side_by_side else 1
    return max(_shift_rows(g)[3] * g.output_channels, min(SHIFT_TILE_ELEMENTS, out) // cores)


def _shift_temporary_elements(geometry: Geometry, batch: int) -> int:
    """A product per tile in flight (one per core side by side), a copy of the input where
    it is not C-contiguous (channels-first), the bias."""
    g = geometry
    _, _, rows_in, width = _shift_rows(g)

    def products(side_by_side: bool) -> int:
        tiles = _shift_tiles(g, batch, _shift_budget(g, batch, side_by_side))
        largest = max((n1 - n0) * (rows_in if n1 - n0 > 1 else r1 - r0) for n0, n1, r0, r1 in tiles)
        return (threads.workers() if side_by_side else 1) * largest * width * g.output_channels

    # whichever way the call runs them (_side_by_side_now)
    in_flight = max(products(False), products(True) if _shift_threaded(g, batch) else 0)
    return in_flight + batch * math.prod(g.input_spatial) * g.input_channels + g.output_channels


@functools.lru_cache(maxsize=256)
def _shift_plan(geometry: Geometry, batch: int, budget: int) -> tuple:
    """Per tile ``(n0, n1, r0, r1)``: whether no tap covers it (zeroed first), and per tap
    reaching it ``(tap, p0, p1, rows, columns, how)``: the product's input rows ``p0:p1``,
    the part of it kept (rows, columns of the product) and ``how`` it is stored: "direct"
    (the product is the whole tile, written in place), "write" or "add". The first tap
    covering the whole tile goes first and writes it. Cached: a call only multiplies."""
    g = geometry
    rows_out, cols_out, rows_in, width = _shift_rows(g)
    taps = []
    for tap, spans in g.taps():
        (start0, stop0, first0), rest = spans[0], spans[1:]
        start1, stop1, first1 = rest[0] if rest else (0, 1, 0)
        taps.append((_flat(tap, g.kernel_shape), first0 - start0, start0, stop0, first1 - start1, start1, stop1))
    plan = []
    for n0, n1, r0, r1 in _shift_tiles(g, batch, budget):
        reach = [t for t in taps if min(r1, t[3]) > max(r0, t[2])]
        covering = [t for t in reach if t[2] <= r0 and t[3] >= r1 and t[5] == 0 and t[6] == cols_out]
        if covering:
            reach.remove(covering[0])
            reach.insert(0, covering[0])
        steps = []
        for i, (t, d0, start0, stop0, d1, start1, stop1) in enumerate(reach):
            a, b = max(r0, start0), min(r1, stop0)  # output rows this tap reaches here
            # items side by side: each product over all their input rows (one run of cells)
            p0, p1 = (0, rows_in) if n1 - n0 > 1 else (a + d0, b + d0)
            kept = (slice(a + d0 - p0, b + d0 - p0), slice(start1 + d1, stop1 + d1))
            target = (slice(a - r0, b - r0), slice(start1, stop1))
            exact = (p0, p1) == (a + d0, b + d0) and (start1 + d1, stop1 + d1) == (0, width) and (a, b) == (r0, r1)
            how = "add" if i > 0 or not covering else "direct" if exact else "write"
            steps.append((t, p0, p1, kept, target, how))
        plan.append(((n0, n1, r0, r1), not covering, tuple(steps)))
    return tuple(plan)


def _shift_run(src: np.ndarray, kernel: np.ndarray, geometry: Geometry, bias, out) -> np.ndarray:
    """Forward convolution of unit strides, per tile and tap: one product of the input rows
    the tap reads, whole rows as they lie (no gather, no padded copy), ``(cells, C_in) @
    (C_in, C_out)`` with the kernel tap as it lies, then its cells shifted into place: the
    first tap that covers the whole tile writes it (the product lands in the output itself
    where nothing is cut away), the others add their part (:func:`_shift_plan`). A row's
    product computes the cells beyond the tap's reach too (a column or two of each row)
    and drops them."""
    g = geometry
    dtype = np.result_type(src, kernel)
    cs, cd = g.input_channels, g.output_channels
    rows_out, cols_out, rows_in, width = _shift_rows(g)
    src4 = np.ascontiguousarray(src).reshape(src.shape[0], rows_in, width, cs)
    out4 = out.reshape(out.shape[0], rows_out, cols_out, cd)
    out_cells = out.reshape(-1, cd) if out.flags.c_contiguous else None
    w = kernel.reshape(-1, cs, cd)

    def tile(task: tuple) -> None:
        (n0, n1, r0, r1), zero, steps = task
        dst = out4[n0:n1, r0:r1]
        if zero:  # no tap reaches every cell of the tile: zeros where none does
            dst[...] = 0
        # one buffer for the tile's products, the largest: taken per tap, a growing buffer
        # would be made while the previous product still held the smaller one
        cells = (n1 - n0) * width * max(p1 - p0 for _, p0, p1, _, _, _ in steps) if steps else 0
        products = workspace.scratch((cells, cd), dtype)
        for t, p0, p1, (rows, columns), (to_rows, to_columns), how in steps:
            operand = src4[n0:n1, p0:p1].reshape(-1, cs)
            if how == "direct" and out_cells is not None:
                np.matmul(operand, w[t], out=out_cells[_cell_run(n0, n1, r0, r1, (rows_out, cols_out))])
                continue
            product = products[:operand.shape[0]]
            np.matmul(operand, w[t], out=product)
            part = product.reshape(n1 - n0, p1 - p0, width, cd)[:, rows, columns]
            if how == "add":
                dst[:, to_rows, to_columns] += part
            else:
                dst[:, to_rows, to_columns] = part
        if bias is not None:
            dst += bias

    batch = src.shape[0]
    side_by_side = _side_by_side_now(_shift_threaded(g, batch))
    plan = _shift_plan(g, batch, _shift_budget(g, batch, side_by_side))
    threads.run(plan, tile, side_by_side)  # each tile writes its own output rows
    return out


def _accumulate_ready(geometry: Geometry, mirrored: bool = False) -> bool:
    """Whether "accumulate" runs this layer: a convolution (with groups, at least
    ACCUMULATE_MIN_GROUP_CHANNELS input channels per group) of every stride 1 (a transposed
    one as the forward convolution it mirrors, :meth:`~tconv.geometry.Geometry.mirrored`),
    1-D to 3-D, its rows (3-D: planes, the last two axes) as large in as out or made so
    within ACCUMULATE_MAX_WIDENING (:func:`_accumulate_geometry`): a tap's cells then lie a
    fixed offset from the cells it reads, in both arrays. Where NumPy's BLAS adds products in place
    (:mod:`tconv.kernels.blas`); chosen (:data:`MODE` unset) with at least
    ACCUMULATE_MIN_CHANNELS input channels, more than one tap and at most
    ACCUMULATE_MAX_KERNEL kernel elements, and no tap leaving more than ACCUMULATE_MAX_CUT
    of a row's plane unreached. Grouped transposed layers (``mirrored``: the forward layer
    asked for a transposed one) take it past the cut too: their other path, concat, gathers
    every tap (forward, 12^3x128->16 'valid' in 4 groups b4, a cut of 31%, concat 13.8 ->
    accumulate 9.7 ms, 12^3x64->64 in 2 groups 12.3 -> 7.8, thirteenth session). Grouped
    forward ones keep the cut since im2col gathers them per group (sixteenth session, in
    process, alternating, ms, im2col / accumulate: those two 4.7 / 5.9 and 2.0 / 2.3; 'same',
    no cut, 16^3x64->64 in 2 groups 7.1 / 5.6, 56x56x128 in 4 2.4 / 1.7). 3-D, against the
    paths before (twelfth session, in process, 3x3x3 'same', ms): 16^3x64->32 b1 per tap
    5.5 -> 2.9, 32^3x16->16 b1 11.9 -> 4.5, 24^3x32->64 b1 20 -> 8.5, 8^3x256->256 b1 8.0 ->
    6.3; 12^3x128->16 in 4 groups b4 concat 20 -> 10.8; transposed 16^3x32->32 b1 col 4-6 ->
    1.6, 12^3 b4 6-12 -> 3.0."""
    g = geometry
    if any(a.stride != 1 for a in g.axes) or not blas.available():
        return False
    if g.groups > 1 and MODE is None and g.input_channels // g.groups < ACCUMULATE_MIN_GROUP_CHANNELS:
        return False
    if MODE is None and _grouped_permuted(g) and _grouped_ready(g):  # many groups of few channels
        return False
    if g.transposed:  # of unit strides: the mirrored forward convolution
        return _accumulate_ready(_mirrored(g), mirrored=True)
    if MODE is None and any(abs(n_out - n_in) > ACCUMULATE_MAX_WIDENING * min(n_out, n_in)
                            for n_in, n_out in zip(g.input_spatial[1:], g.output_spatial[1:])):
        return False
    g = _accumulate_geometry(g)  # planes as large in as out
    if MODE is not None:
        return True
    if math.prod(g.kernel_shape) == 1:  # one tap: shift's product lands in the output as it is
        return False
    plane = math.prod(g.output_spatial[1:])
    cut = max((plane - math.prod(e - s for s, e, _ in spans[1:]) for _, spans in g.taps()), default=0)
    return (g.input_channels >= ACCUMULATE_MIN_CHANNELS and math.prod(g.neutral_kernel_shape) <= ACCUMULATE_MAX_KERNEL
            and (cut <= ACCUMULATE_MAX_CUT * plane or (g.groups > 1 and mirrored)))


#: :meth:`Geometry.mirrored`, kept per plan (a call would build it again)
_mirrored = functools.lru_cache(maxsize=256)(Geometry.mirrored)


@functools.lru_cache(maxsize=256)
def _accumulate_geometry(geometry: Geometry) -> Geometry:
    """The forward convolution accumulate runs for ``geometry``: a transposed one mirrored
    (:meth:`~tconv.geometry.Geometry.mirrored`); on each axis after the first (2-D: the
    columns, 3-D: the plane's rows and columns), where the output is longer than the input
    (a 'valid' or 'full' transposed convolution, padding beyond 'same'), read from its input
    extended by zeros to the output's length (:meth:`~tconv.geometry.Geometry.extended`, a
    copy of the input), the rest of the padding split as 'same' splits it; where it is
    shorter (a 'valid' forward convolution, PyTorch's ``padding=0``), computed into a frame
    as long as the input (:meth:`~tconv.geometry.Geometry.padded_more`), whose first cells
    are the output. A tap's cells then lie a fixed offset from the cells they read."""
    g = _mirrored(geometry) if geometry.transposed else geometry
    extend, frame = [(0, 0)], [(0, 0)]  # per axis; the first (the rows) as it is
    for a, n_in, n_out in zip(g.axes[1:], g.input_spatial[1:], g.output_spatial[1:]):
        wider = n_out - n_in  # = pad_lo + pad_hi - (dilated kernel - 1)
        if wider > 0:  # the input extended, each side within its padding, the rest split as 'same'
            least, most = max(0, wider - max(a.pad_hi, 0)), min(wider, max(a.pad_lo, 0))
            lo = min(max(a.pad_lo - (a.dilated_kernel - 1) // 2, least), most)
            extend.append((lo, wider - lo))
        else:
            extend.append((0, 0))
        frame.append((0, max(0, -wider)))  # computed into a frame as large, its first cells kept
    if any(p != (0, 0) for p in extend[1:]):
        g = g.extended(tuple(extend))
    if any(p != (0, 0) for p in frame[1:]):
        g = g.padded_more(tuple(frame))
    return g


def _accumulate_shape(geometry: Geometry) -> tuple[int, int, tuple[int, ...]]:
    """Output rows, input rows (the first axis) and the plane of a row (the other axes'
    output sizes, equal to the input's where accumulate runs) of a forward plan."""
    g = geometry
    return g.output_spatial[0], g.input_spatial[0], g.output_spatial[1:]


@functools.lru_cache(maxsize=256)
def _accumulate_plan(geometry: Geometry, batch: int, block: int, apart: bool = False) -> tuple:
    """accumulate's steps: per block of output, per tap reaching it, ``(n0, tap, p0, p1,
    offset, kept, done)``; ``done`` on a block's last step ``(n0, n1, r0, r1)``, its items
    and output rows (a block that no tap reaches gets one step of its own, of no product,
    ``tap`` -1), else None. A row is a cell of the first axis with its plane (the other axes'
    cells, as many in as out: 1-D one cell, 2-D a row of cells, 3-D a plane). The block is
    items ``n0 ..`` (their cells flattened in one run, rows after rows, items after items)
    or rows of one item, at most ``block`` output elements unless one row is more. The tap's
    product covers the cells ``p0 <= p < p1`` counted from item ``n0``'s first, each reading
    input cell ``p + offset`` counted alike. Within that run some cells are not the tap's:
    those of a row's plane it does not reach (the columns, and in 3-D the plane's rows, at
    its edges: they read the neighbouring ones) and, in a block of several items, those of
    the rows it does not reach (they read the neighbouring item's edge rows). ``kept`` names
    them as index tuples into the output's ``(N, rows, *plane, C)`` view, to be kept aside
    and put back (:func:`_accumulate_into`); a few of them may lie outside the run, which
    changes nothing. Several items share a run only where an item's input and output have
    as many rows (then the offset is the same for every item), and not ``apart`` (items of
    channels-first data, each read where it lies)."""
    g = geometry
    rows_out, rows_in, plane = _accumulate_shape(g)
    size = math.prod(plane)
    pitch = tuple(math.prod(plane[k + 1:]) for k in range(len(plane)))  # a plane axis's step
    item = rows_out * size * g.output_channels
    if batch > 1 and rows_out == rows_in and item <= block and not apart:
        step = block // item
        blocks = [(n0, min(batch, n0 + step), 0, rows_out) for n0 in range(0, batch, step)]
    else:
        rows = max(1, block // (size * g.output_channels))
        blocks = [(n, n + 1, r0, min(rows_out, r0 + rows)) for n in range(batch) for r0 in range(0, rows_out, rows)]
    spans = [(_flat(tap, g.kernel_shape), spans[0], spans[1:]) for tap, spans in g.taps()]
    steps = []
    for n0, n1, r0, r1 in blocks:
        first_step = len(steps)
        for t, (o0, o1, i0), inner in spans:
            a, b = max(o0, r0), min(o1, r1)  # the tap's output rows in this block
            if a >= b:
                continue
            items = slice(n0, n1)
            kept = []
            for k, (lo, hi, _) in enumerate(inner):  # each plane axis: the cells before and after its reach
                reached = tuple(slice(s, e) for s, e, _ in inner[:k])
                kept += [(items, slice(a, b)) + reached + (slice(0, lo),),
                         (items, slice(a, b)) + reached + (slice(hi, plane[k]),)]
            kept += [(slice(n0 + 1, n1), slice(r0, a)), (slice(n0, n1 - 1), slice(b, r1))]
            kept = tuple(k for k in kept if all(part.start < part.stop for part in k))
            first = sum(lo * step for (lo, _, _), step in zip(inner, pitch))
            last = sum((hi - 1) * step for (_, hi, _), step in zip(inner, pitch))
            shift = sum((j - lo) * step for (lo, _, j), step in zip(inner, pitch))
            p1 = (n1 - 1 - n0) * rows_out * size + (b - 1) * size + last + 1
            steps.append((n0, t, a * size + first, p1, (i0 - o0) * size + shift, kept, None))
        if len(steps) == first_step:  # no tap reaches these rows
            steps.append((n0, -1, 0, 0, 0, (), None))
        steps[-1] = steps[-1][:-1] + ((n0, n1, r0, r1),)
    return tuple(steps)


def _accumulate_takes(src: np.ndarray, out: np.ndarray) -> bool:
    """Whether :func:`_accumulate_run` can run a call: BLAS adds into ``out``'s cells as one
    run, so ``out`` must be C-contiguous (channels-last), and of the input's floating dtype."""
    return out.flags.c_contiguous and out.dtype in (np.float32, np.float64) and src.dtype == out.dtype


def _accumulate_run(src: np.ndarray, kernel: np.ndarray, geometry: Geometry, bias, out,
                    first: np.ndarray | None = None) -> np.ndarray:
    """Forward convolution of unit strides on rows (3-D: planes) as large as the output's,
    or made so (:func:`_accumulate_geometry`), per item and tap: one product of the input's cells as they lie, ``(cells, C_in) @ (C_in, C_out)``
    with the tap's weights, added by BLAS straight into the output's cells the tap reaches
    (GEMM's ``beta = 1``, :mod:`tconv.kernels.blas`): no gather, no scratch, no second
    pass; a block of output rows at a time (:data:`ACCUMULATE_BLOCK_ELEMENTS`), so that it
    stays in cache across the taps. The output's rows are flattened into one run of cells
    per tap; the few cells of that run whose column the tap does not reach (a column at a
    row's edge for a 3x3 'same' kernel) read the neighbouring row's edge cell, so their
    values are kept aside before the product and put back after it, exactly: a product
    taken back instead (``alpha = -1``) would leave them off by a rounding of it, which an
    edge cell of 1e30 makes larger than the cell (measured: errors of 5.5 on cells of size
    1). The output must be C-contiguous and of the inputs' floating dtype
    (:func:`_accumulate_takes`); :func:`_run` gives any other call to :func:`_other_mode`'s path.

    A transposed convolution of unit strides runs as the forward convolution it mirrors
    (:meth:`~tconv.geometry.Geometry.mirrored`), its kernel read in place as
    :func:`tconv.layout.mirrored_kernel` turns it: the taps in reverse order, each
    transposed (BLAS's ``TransB``), no copy. 1.3-3.8x faster than col there (in process,
    alternating, 3x3 'same', ms: 24x32x128->128 b1 4.21 -> 1.10, 48x64x64->64 b1 2.73 ->
    1.20, 96x128x32->32 b1 2.94 -> 1.63, b8 18.0 -> 14.3).

    ``first`` (:func:`reads_channels_first`): ``src`` is channels-first, read where it lies
    (each item's ``(C, cells)`` by BLAS transposed; extended, into a channels-first copy),
    ``out`` the C-contiguous channels-last scratch the products add into, and each block's
    rows, once its last tap is added, are moved into ``first`` while cached."""
    g = geometry
    dtype = out.dtype
    if not _accumulate_takes(src, out):  # _run gives such calls to the other path
        raise TconvError("out", out, f"must be C-contiguous and of the input's floating dtype "
                                     f"({src.dtype}) for accumulate to add into it")
    mirror = g.transposed
    g = _accumulate_geometry(geometry)  # of geometry's sizes where nothing is extended or framed
    steps = _accumulate_plan(g, out.shape[0], ACCUMULATE_BLOCK_ELEMENTS, first is not None)
    if g.input_spatial != geometry.input_spatial:  # extended by zeros to the output's plane
        plain = _mirrored(geometry) if mirror else geometry
        inside = tuple(slice(a.pad_lo - e.pad_lo, a.pad_lo - e.pad_lo + n)
                       for a, e, n in zip(plain.axes, g.axes, plain.input_spatial))
        if first is None:
            source = np.zeros((src.shape[0],) + g.input_spatial + (g.input_channels,), dtype)
            source[(slice(None),) + inside] = src
        else:
            source = np.zeros((src.shape[0], g.input_channels) + g.input_spatial, dtype)
            source[(slice(None), slice(None)) + inside] = src
    else:
        source = src if first is not None else np.ascontiguousarray(src)
    if g.output_spatial != geometry.output_spatial:  # into a frame as large as the input's plane
        frame = np.empty((out.shape[0],) + g.output_spatial + (g.output_channels,), dtype)
        _accumulate_into(source, kernel, g, mirror, bias, frame, steps)
        out[...] = frame[(slice(None),) + tuple(slice(0, n) for n in geometry.output_spatial)]
        return out
    return _accumulate_into(source, kernel, g, mirror, bias, out, steps, first)


def _accumulate_into(source: np.ndarray, kernel: np.ndarray, g: Geometry, mirror: bool, bias, out: np.ndarray,
                     steps: tuple, first: np.ndarray | None = None) -> np.ndarray:
    """:func:`_accumulate_run`'s products: ``g`` the forward convolution it runs (rows as wide
    in as out), ``source`` and ``out`` C-contiguous, ``steps`` its :func:`_accumulate_plan`;
    ``mirror``: the kernel is the transposed convolution's, read mirrored; ``first``: the
    source is channels-first and each finished block is moved there."""
    dtype = out.dtype
    cs, cd, groups = g.input_channels, g.output_channels, g.groups
    cs_g, cd_g = cs // groups, cd // groups
    rows_out, rows_in, plane = _accumulate_shape(g)
    size_plane = math.prod(plane)
    # mirrored: tap t is the kernel's tap (taps - 1 - t), (C_out'/groups, C_in') read transposed,
    # group k's block its columns k * C_in'/groups ..; forward: (C_in/groups, C_out), group k's
    # block its columns k * C_out/groups .. (as layout.mirrored_kernel turns it)
    weights = np.ascontiguousarray(kernel.reshape((-1, cd_g, cs) if mirror else (-1, cs_g, cd)), dtype)
    transpose, leading, group_step = (112, cs, cs_g) if mirror else (111, cd, cd_g)
    last = weights.shape[0] - 1
    out[...] = 0 if bias is None else bias  # the products add to it
    cells = out.reshape((out.shape[0], rows_out) + plane + (cd,))
    gemm, size = blas.gemm(dtype), out.itemsize
    x_base, o_base, w_base = source.ctypes.data, out.ctypes.data, weights.ctypes.data
    x_item, o_item, w_tap = rows_in * size_plane * cs * size, rows_out * size_plane * cd * size, cs_g * cd * size
    # channels-last: a cell's channels adjacent (A as it lies, lda C_in, group k's from column
    # k * C_in/groups); channels-first: a channel's cells adjacent (A read transposed, lda the
    # item's cells, group k's from row k * C_in/groups)
    trans_a, lda, x_cell, x_group = (111, cs, cs, cs_g) if first is None else (112, rows_in * size_plane, 1,
                                                                               cs_g * rows_in * size_plane)
    for n0, t, p0, p1, offset, kept, done in steps:
        if t >= 0:
            x, o = x_base + n0 * x_item + (p0 + offset) * x_cell * size, o_base + n0 * o_item + p0 * cd * size
            aside = [cells[k].copy() for k in kept]
            w = w_base + (last - t if mirror else t) * w_tap
            for k in range(groups):  # each group's channels read and written in place (lda, ldc)
                gemm(101, trans_a, transpose, p1 - p0, cd_g, cs_g, 1.0, x + k * x_group * size, lda,
                     w + k * group_step * size, leading, 1.0, o + k * cd_g * size, cd)
            for k, values in zip(kept, aside):
                cells[k] = values
        if first is not None and done is not None:
            _moved_rows(out, first, *done, 0, cd)
    return out


def _grouped_ready(geometry: Geometry) -> bool:
    """Whether the compiled direct loop runs this layer: grouped (either direction) with
    fewer than COL_MIN_GROUP_CHANNELS input channels per group (depthwise among them), or
    many groups of few channels (:func:`_grouped_permuted`), Numba present, small tables."""
    g = geometry
    return (g.groups > 1 and (g.input_channels // g.groups < COL_MIN_GROUP_CHANNELS or _grouped_permuted(g))
            and compiled.available() and _col_tables(g) is not None)


def _depthwise_rows(geometry: Geometry) -> bool:
    """Whether the grouped loop runs row by row (:data:`DEPTHWISE_ROWS`): a forward depthwise
    layer (one channel in and out a group) on 2-D data."""
    g = geometry
    return DEPTHWISE_ROWS and g.rank == 2 and not g.transposed and g.input_channels == g.output_channels == g.groups


def _grouped_permuted(geometry: Geometry) -> bool:
    """Whether the grouped loop runs on the input permuted groups innermost: at least
    GROUPED_PERMUTED_MIN_GROUPS groups of at most GROUPED_PERMUTED_MAX_CHANNELS input
    channels, not depthwise (one channel in and out a group keeps the plain loop)."""
    g = geometry
    s, d = g.input_channels // g.groups, g.output_channels // g.groups
    return g.groups >= GROUPED_PERMUTED_MIN_GROUPS and s <= GROUPED_PERMUTED_MAX_CHANNELS and s * d > 1


def _grouped_run(src: np.ndarray, kernel: np.ndarray, geometry: Geometry, bias, out) -> np.ndarray:
    """Grouped layers of few channels per group, both directions: a compiled direct loop
    over the output cells and the taps reaching them, no product, no temporaries (many
    groups: on a copy of the input permuted groups innermost, :func:`_grouped_permuted`;
    forward depthwise layers on 2-D data row by row, :data:`DEPTHWISE_ROWS`); on large
    outputs a block of output rows per core, side by side (:data:`GROUPED_THREADS_MIN_OUTPUT`:
    each block's rows with their rows of the first axis's tables)."""
    g = geometry
    groups = g.groups
    cs, cd = g.input_channels, g.output_channels
    s, d = cs // groups, cd // groups
    b = _zeros(cd, out.dtype) if bias is None else bias
    count, tap, cell, *rest = _col_tables(g)
    if _depthwise_rows(g):  # (k0, k1, C), the tables of the first axis, the spans of the second
        axis = g.axes[1]
        spans = np.array([axis.tap_span(k) for k in range(axis.kernel)], np.int64).reshape(-1, 3)
        w = np.ascontiguousarray(kernel.reshape(g.kernel_shape + (cd,)), out.dtype)

        def block(r0: int, r1: int) -> None:
            compiled.depthwise_rows(src, out, count, tap, cell, spans, axis.stride, w, b, r0, r1)
    else:
        # (tap, group, src, dst) or permuted (tap, src, dst, group), C-contiguous (a copy of
        # the kernel, which is small here)
        w = kernel.reshape((-1, d, groups, s) if g.transposed  # (tap, dst, group, src)
                           else (-1, s, groups, d))              # (tap, src, group, dst)
        if _grouped_permuted(g):  # the input (.., s, groups), the bias (d, groups)
            source = np.ascontiguousarray(src.reshape(src.shape[:-1] + (groups, s)).swapaxes(-1, -2), out.dtype)
            source = source.reshape(source.shape[:1 + g.rank] + (1,) * (3 - g.rank) + (s, groups))
            w = np.ascontiguousarray(w.transpose((0, 3, 1, 2) if g.transposed else (0, 1, 3, 2)), out.dtype)
            b, loop = np.ascontiguousarray(b.reshape(groups, d).T), compiled.grouped_permuted
        else:
            w = np.ascontiguousarray(w.transpose((0, 2, 3, 1) if g.transposed else (0, 2, 1, 3)), out.dtype)
            source, loop = _as3d(src, g.rank), compiled.grouped
        target = _as3d(out, g.rank)

        def block(r0: int, r1: int) -> None:
            loop(source, target[:, r0:r1], count[r0:r1], tap[r0:r1], cell[r0:r1], *rest, w, b)

    rows = g.output_spatial[0]
    parts = min(threads.workers(), rows) if SIDE_BY_SIDE and out.size >= GROUPED_THREADS_MIN_OUTPUT else 1
    bounds = [rows * i // parts for i in range(parts + 1)]
    threads.run(list(zip(bounds, bounds[1:])), lambda task: block(*task), _side_by_side_now(parts > 1))
    return out


_RUNS = {"flat": _flat_run, "per_tap": _per_tap_run, "concat": _concat_run, "im2col": _im2col_run,
         "rows": _rows_run, "shift": _shift_run, "grouped": _grouped_run, "accumulate": _accumulate_run}


def conv(x: np.ndarray, kernel: np.ndarray, geometry: Geometry, bias=None, out=None,
         now: tuple | None = None, prepared: Prepared | None = None, first: np.ndarray | None = None) -> np.ndarray:
    """Forward convolution. ``x``: ``(N, *size, C_in)``; returns ``(N, *out, C_out)``
    (or fills ``out``, indexed channels-last, with any strides). ``now``:
    :func:`settings`, and ``prepared``: :func:`prepare`, where the caller has them.
    ``first``: as :func:`conv_transpose`'s."""
    return _run(x, kernel, geometry, bias, out, now, prepared, first)


def conv_transpose(y: np.ndarray, kernel: np.ndarray, geometry: Geometry, bias=None, out=None,
                   now: tuple | None = None, prepared: Prepared | None = None,
                   first: np.ndarray | None = None) -> np.ndarray:
    """Transposed convolution. ``y``: ``(N, *out, C_out)``; returns ``(N, *size, C_in)``
    (or fills ``out``, indexed channels-last, with any strides). ``now``:
    :func:`settings`, and ``prepared``: :func:`prepare`, where the caller has them.
    ``first`` (where :func:`reads_channels_first`): ``y`` is ``(N, C_out, *out)``,
    C-contiguous, read in place; the result is written into ``first``, ``(N, C_in, *size)``,
    through ``out``, a C-contiguous channels-last scratch."""
    return _run(y, kernel, geometry, bias, out, now, prepared, first)
