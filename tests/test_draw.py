"""Pictures (issue 5): decode what was drawn and hold it against Geometry and the real kernels.

The drawn grids must be computed, not drawn by hand: for random geometries each GIF
frame is decoded with Pillow (and each SVG parsed) and the cells read back, by their
exact fill colours, into tap counts, cropped cells, the current stamp and the kept
window's outline. Those must match ``Geometry``'s crops and :func:`tconv.ops.run` on
impulse and all-ones inputs.
"""

from __future__ import annotations

import io
import itertools
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tconv
from tconv.errors import TconvError
from tconv.geometry import AxisGeometry, Geometry
from tconv.ops import run

PIL = pytest.importorskip("PIL")
from PIL import Image, ImageSequence  # noqa: E402

from tconv.draw import _style as st  # noqa: E402
from tconv.draw import raster, scene  # noqa: E402
from tconv.draw.scene import Cell  # noqa: E402

SEED = "keras.Conv2DTranspose(512, 3, strides=2, padding='same')"
TORCH_SEED = "torch.nn.ConvTranspose2d(1024, 512, 3, stride=2, padding=1, output_padding=1)"


def random_geometries(count: int, seed: int = 5):
    """Transposed geometries with every kind of crop: positive, zero, negative (zero extension)."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        rank = 1 + len(out) % 2
        axes = []
        for _ in range(rank):
            n, k, s, d = (int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(1, 4)),
                          int(rng.integers(1, 3)))
            span = d * (k - 1)
            lo, hi = (int(rng.integers(-2, span + 2)) for _ in range(2))
            try:
                axes.append(AxisGeometry.transposed(n, k, s, d, lo, hi))
            except TconvError:
                break
        if len(axes) == rank:
            out.append(Geometry(tuple(axes), 1, 1, 1, True))
    return out


GEOMETRIES = random_geometries(8)


def gid(g: Geometry) -> str:
    """A one-line reproducer: AxisGeometry.transposed(n, k, s, d, crop_lo, crop_hi) per axis."""
    return "_".join(f"n{a.out}k{a.kernel}s{a.stride}d{a.dilation}c{a.crop_lo},{a.crop_hi}" for a in g.axes)


def one(g: Geometry, x: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """The real kernel on one channel (ones kernel by default)."""
    w = np.ones(g.kernel_shape) if w is None else w
    return run(g, x[None, ..., None], w[..., None, None])[0, ..., 0]


def full_of(g: Geometry) -> Geometry:
    return Geometry(tuple(AxisGeometry.transposed(a.out, a.kernel, a.stride, a.dilation, 0, 0) for a in g.axes),
                    1, 1, 1, True)


def rc(index):
    return (0, index[0]) if len(index) == 1 else tuple(index)


def kept_ranges(g):
    return [(a.crop_lo, a.full - a.crop_hi) for a in g.axes]


class Decoder:
    """Read cells back from a decoded RGB frame by their exact fill colours."""

    def __init__(self, sc):
        self.sc = sc
        top = max(sc.heat_max, 1)
        self.heat = {st.heat(c, sc.heat_max): (c, False) for c in range(top + 1)}
        self.heat.update({st.heat(c, sc.heat_max, True): (c, True) for c in range(top + 1)})

    def fill(self, img, panel, row, col, frame):
        x0, y0, _, _ = raster.cell_box(self.sc, panel, row, col, frame)
        return tuple(int(v) for v in img[y0 + 4, x0 + 4])

    def marked(self, img, panel, row, col, frame):
        x0, y0, x1, y1 = raster.cell_box(self.sc, panel, row, col, frame)
        return tuple(int(v) for v in img[(y0 + y1) // 2, x0 + 2]) == st.MARK


def decode_gif(data: bytes) -> list[np.ndarray]:
    im = Image.open(io.BytesIO(data))
    return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]


@pytest.mark.parametrize("g", GEOMETRIES, ids=gid)
def test_scatter_gif_frames_match_kernels(g):
    sc = scene(g, view="scatter")
    inputs = list(itertools.product(*(range(a.out) for a in g.axes)))
    assert len(sc.frames) == len(inputs) + 1
    frames = decode_gif(raster.gif(sc))
    assert len(frames) == len(sc.frames)
    dec = Decoder(sc)
    fg = full_of(g)
    kept = kept_ranges(g)
    grid = [(0, a.full) for a in g.axes]
    done = np.zeros(tuple(a.out for a in g.axes))
    for n, (img, idx) in enumerate(zip(frames, inputs)):
        done[idx] = 1
        counts = np.rint(one(fg, done)).astype(int)            # taps so far, by the kernels
        impulse = np.zeros_like(done)
        impulse[idx] = 1
        stamp = one(fg, impulse) != 0                            # where input n lands
        for pos in itertools.product(*(range(min(0, k0), max(a.full, k1)) for a, (k0, k1) in zip(g.axes, kept))):
            colour = dec.fill(img, "full", *rc(pos), n)
            cropped = not all(k0 <= p < k1 for p, (k0, k1) in zip(pos, kept))
            if all(0 <= p < hi for p, (_, hi) in zip(pos, grid)):
                assert dec.heat.get(colour) == (counts[pos], cropped), (n, pos, colour)
                assert dec.marked(img, "full", *rc(pos), n) == bool(stamp[pos]), (n, pos)
            else:  # zero extension: a negative crop
                assert colour == st.fill(Cell(0, 0, role="zero", cropped=cropped), 0)
        assert dec.fill(img, "input", *rc(idx), n) == st.FILLS["current"]
    # the crop frame: the output is the kept window, and its counts are the kernels' on all-ones
    img, last = frames[-1], len(sc.frames) - 1
    ones = np.rint(one(g, np.ones(tuple(a.out for a in g.axes)))).astype(int)
    for pos in itertools.product(*(range(a.size) for a in g.axes)):
        colour = dec.fill(img, "output", *rc(pos), last)
        assert dec.heat.get(colour, (0, False) if colour == st.FILLS["zero"] else None) == (ones[pos], False)
    # the kept window's outline surrounds exactly the kept cells
    ys, xs = np.nonzero((img == st.KEPT).all(-1))
    first = raster.cell_box(sc, "full", *rc([k0 for k0, _ in kept]), last)
    final = raster.cell_box(sc, "full", *rc([k1 - 1 for _, k1 in kept]), last)
    assert abs(xs.min() - first[0]) <= 2 and abs(ys.min() - first[1]) <= 2
    assert abs(xs.max() - final[2]) <= 2 and abs(ys.max() - final[3]) <= 2


@pytest.mark.parametrize("g", GEOMETRIES[:4], ids=gid)
def test_overlap_svg_matches_kernels(g):
    root = ET.fromstring(tconv.draw(g, view="overlap"))
    panels = {p.get("data-name"): p for p in root.iter("{http://www.w3.org/2000/svg}g")
              if p.get("class") == "panel"}
    full = np.rint(one(full_of(g), np.ones(tuple(a.out for a in g.axes)))).astype(int)
    out = np.rint(one(g, np.ones(tuple(a.out for a in g.axes)))).astype(int)
    kept = kept_ranges(g)
    for name, expected in (("full", full), ("output", out)):
        for r in panels[name].iter("{http://www.w3.org/2000/svg}rect"):
            cls = r.get("class").split()
            if cls[0] != "cell":
                continue
            pos = (int(r.get("data-col")),) if g.rank == 1 else (int(r.get("data-row")), int(r.get("data-col")))
            inside = all(0 <= p < n for p, n in zip(pos, expected.shape))
            assert int(r.get("data-count") or 0) == (expected[pos] if inside else 0), (name, pos)
            if name == "full":
                assert ("cropped" in cls) == (not all(k0 <= p < k1 for p, (k0, k1) in zip(pos, kept)))
    box = next(r for r in panels["full"].iter("{http://www.w3.org/2000/svg}rect") if r.get("class") == "box kept")
    rows = tuple(map(int, box.get("data-rows").split()))
    cols = tuple(map(int, box.get("data-cols").split()))
    assert ((rows, cols) if g.rank == 2 else (cols,)) == tuple(kept)


def test_seed_animation_frames():
    sc = scene(SEED, (8, 8, 1024))
    assert [f.kind for f in sc.frames] == ["step"] * 64 + ["crop"]
    im = Image.open(io.BytesIO(raster.gif(sc, cell=12)))
    assert im.n_frames == 65
    out = sc.frames[-1].panel("output")
    assert (out.height, out.width) == (16, 16)
    g = sc.geometry
    assert [(a.full, a.crop_lo, a.crop_hi) for a in g.axes] == [(17, 0, 1)] * 2
    assert Image.open(io.BytesIO(raster.apng(sc, [0, 1, -1], cell=12))).n_frames == 3


def test_seed_keras_and_torch_crop_opposite_borders():
    k = scene(SEED, (8, 8, 1024), "overlap").frames[0].panel("full")
    t = scene(TORCH_SEED, (1024, 8, 8), "overlap").frames[0].panel("full")
    assert {(c.row, c.col) for c in k.cells if c.cropped} == {(r, c) for r in range(17) for c in range(17)
                                                              if r == 16 or c == 16}
    assert {(c.row, c.col) for c in t.cells if c.cropped} == {(r, c) for r in range(17) for c in range(17)
                                                              if r == 0 or c == 0}


def _terms(caption: str):
    head = caption.split("   ")[0]
    return [(int(a), int(b)) for a, b in re.findall(r"x(\d+)\*w(\d+)", head)]


@pytest.mark.parametrize("g", GEOMETRIES, ids=gid)
def test_zeros_view_is_the_scatter(g):
    """Each frame's window (inputs under the flipped kernel) gives the kernels' output cell."""
    rng = np.random.default_rng(1)
    x = rng.integers(-3, 4, tuple(a.out for a in g.axes)).astype(float)
    w = rng.integers(-3, 4, g.kernel_shape).astype(float)
    y = one(g, x, w)
    sc = scene(g, view="zeros")
    outputs = list(itertools.product(*(range(a.size) for a in g.axes)))
    assert len(sc.frames) == len(outputs)
    for frame, j in zip(sc.frames, outputs):
        total = sum(x.ravel()[a] * w.ravel()[b] for a, b in _terms(frame.caption))
        assert total == y[j], (j, frame.caption)


@pytest.mark.parametrize("g", GEOMETRIES[:6], ids=gid)
def test_conv_view_and_matrix_match_kernels(g):
    f = g.flip()
    rng = np.random.default_rng(2)
    x = rng.integers(-3, 4, tuple(a.size for a in f.axes)).astype(float)
    w = rng.integers(-3, 4, f.kernel_shape).astype(float)
    y = run(f, x[None, ..., None], w[..., None, None])[0, ..., 0]
    sc = scene(f, view="conv")
    for frame, o in zip(sc.frames, itertools.product(*(range(a.out) for a in f.axes))):
        assert sum(x.ravel()[a] * w.ravel()[b] for a, b in _terms(frame.caption)) == y[o]
    # C from the matrix view, with numbers: C x is the forward conv, C^T y the transposed one
    m = scene(f, view="matrix", x=x, kernel=w).frames[0]
    c = np.zeros((m.panel("C").height, m.panel("C").width))
    for cell in m.panel("C").cells:
        c[cell.row, cell.col] = float(cell.text or 0)
    assert np.array_equal(c @ x.ravel(), y.ravel())
    yt = rng.integers(-3, 4, y.shape).astype(float)
    assert np.array_equal(c.T @ yt.ravel(), one(g, yt, w).ravel())


def test_values_come_from_the_kernels():
    x = np.arange(9.0).reshape(3, 3)
    w = np.array([[1.0, -1, 2], [0, 3, 1], [2, 1, -2]])
    sc = scene("keras.Conv2DTranspose(1, 3, strides=2, padding='same')", (3, 3, 1), x=x, kernel=w)
    y = one(sc.geometry, x, w)
    out = sc.frames[-1].panel("output")
    assert {(c.row, c.col): float(c.text) for c in out.cells} == {(r, c): y[r, c] for r in range(6) for c in range(6)}
    with pytest.raises(TconvError, match="x"):
        scene("keras.Conv2DTranspose(1, 3, strides=2)", (3, 3, 1), x=np.ones((2, 2)), kernel=w)


def test_tty_has_the_grid():
    text = tconv.draw("torch.nn.ConvTranspose1d(1, 1, 3, stride=2, padding=1)", (1, 4), format="tty")
    assert "\u250c" in text and "\u2518" in text and "x3" in text and "\u2591" in text
    coloured = tconv.draw(SEED, (8, 8, 1024), view="overlap", format="tty", colour=True)
    assert "\x1b[" in coloured and "\u2502" in coloured
    assert "\x1b[" not in tconv.draw(SEED, (8, 8, 1024), view="overlap", format="tty")


def test_refusals():
    with pytest.raises(TconvError, match="view"):
        tconv.draw(SEED, (8, 8, 1024), view="bogus")
    with pytest.raises(TconvError, match="format"):
        tconv.draw(SEED, (8, 8, 1024), format="jpeg")
    with pytest.raises(TconvError, match="matrix"):
        tconv.draw(SEED, (8, 8, 1024), view="matrix")
    with pytest.raises(TconvError, match="frame"):
        tconv.draw(SEED, (2, 2, 1), format="png", frame=99)
    with pytest.raises(TconvError, match="axes"):
        tconv.draw("keras.Conv3DTranspose(1, 3, strides=2)", (2, 2, 2, 1), axes=(0, 1, 2))


def test_missing_pillow_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(TconvError, match=r"tconv\[draw\]"):
        tconv.draw(SEED, (2, 2, 1), format="png")


def test_3d_slice_and_formats(tmp_path):
    svg = tconv.draw("keras.Conv3DTranspose(1, 3, strides=(1, 2, 3))", (2, 3, 2, 1), axes=(0, 2))
    assert "spatial axes (0, 2)" in svg and svg._repr_svg_() == svg
    png = tconv.draw(SEED, (2, 2, 1), format="png")
    assert png._repr_png_().startswith(b"\x89PNG")
    strip = tconv.draw(SEED, (2, 2, 1), frame="all")
    assert strip.count('class="frame"') == 5


def test_import_stays_numpy_only_and_draw_is_callable():
    code = ("import sys, tconv; import tconv.draw.svg; "
            "s = tconv.draw(\"keras.Conv1DTranspose(1, 3, strides=2)\", (3, 1)); "
            "assert s.startswith('<svg'); assert 'PIL' not in sys.modules; "
            "from tconv.draw import draw; assert draw is not tconv.draw and callable(tconv.draw)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli(tmp_path, capsys):
    from tconv.cli import main

    path = tmp_path / "t.svg"
    assert main(["draw", "torch.nn.ConvTranspose1d(1, 1, 3, stride=2)", "--input", "1x3", "-o", str(path)]) == 0
    assert path.read_text().startswith("<svg")
    assert main(["draw", "torch.nn.ConvTranspose1d(1, 1, 3, stride=2)", "--input", "1x3", "--view", "zeros",
                 "--frame", "2", "--no-colour"]) == 0
    assert "\u250c" in capsys.readouterr().out
    assert main(["draw", "torch.nn.ConvTranspose1d(1, 1, 3, stride=2)", "--input", "1x3", "-o",
                 str(tmp_path / "t.bmp")]) == 2


def test_draw_imports_only_what_design_allows():
    """DESIGN.md section 3: draw may import spec, geometry, layout, ops (and errors); never a
    dialect or a framework, and Pillow only inside functions."""
    import ast
    from pathlib import Path

    allowed = {"draw", "spec", "geometry", "layout", "ops", "errors"}
    for path in sorted((Path(tconv.__file__).parent / "draw").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                     [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                parts = name.split(".")
                if parts[0] == "tconv":
                    assert parts[1] in allowed, f"{path.name} imports {name}"
                assert parts[0] not in ("torch", "tensorflow", "keras", "jax", "onnx", "onnxruntime"), path.name
        top = {a.name.split(".")[0] for n in tree.body if isinstance(n, ast.Import) for a in n.names}
        top |= {n.module.split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom) and n.module}
        assert "PIL" not in top, f"{path.name} imports Pillow at module level"
