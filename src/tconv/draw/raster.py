"""Scene -> PNG, animated GIF and APNG, with Pillow (an extra: ``pip install tconv[draw]``).

Pillow is imported when a picture is made, never by ``import tconv``. Fills are the
exact colours of :mod:`tconv.draw._style`; a GIF's palette holds every one of them, so
a decoded frame reads back into roles and tap counts (:func:`cell_box` says where a
cell lies).
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Sequence

from tconv.draw import _style as st
from tconv.draw.scene import CAPTION_CHARS, Frame, Layout, Scene, layout
from tconv.errors import TconvError

__all__ = ["png", "gif", "apng", "frames", "cell_box", "CELL"]

CELL = 24  # px per cell


def _pillow():
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise TconvError("format", "png/gif/apng", "needs Pillow, the drawing extra: "
                         "pip install tconv[draw]  (SVG and tty need nothing)") from None
    return Image, ImageDraw, ImageFont


@lru_cache(maxsize=32)
def _font(size: float):
    _, _, ImageFont = _pillow()
    try:
        return ImageFont.load_default(size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def cell_box(scene: Scene, panel: str, row: int, col: int, frame: int = 0,
             cell: int = CELL) -> tuple[int, int, int, int]:
    """Pixel box ``(x0, y0, x1, y1)`` of a panel's cell in a rendered frame (exclusive ends)."""
    lay = layout(scene)
    p = scene.frames[frame].panel(panel)
    if p is None:
        raise TconvError("panel", panel, f"is not drawn in frame {frame}")
    _, _, _, top = st.canvas(scene, lay, cell)
    x0, y0 = lay.slots[panel]
    x = round((x0 + col - p.cols[0]) * cell)
    y = round((y0 + row - p.rows[0]) * cell + top)
    return x, y, x + cell, y + cell


def frames(scene: Scene, indices: Sequence[int] | None = None, *, cell: int = CELL) -> list:
    """RGB Pillow images of the chosen frames (default: all)."""
    Image, ImageDraw, _ = _pillow()
    lay = layout(scene)
    width, title_h, frame_h, top = st.canvas(scene, lay, cell)
    size = (round(width), round(title_h + frame_h))
    chosen = range(len(scene.frames)) if indices is None else [i % len(scene.frames) for i in indices]
    images = []
    for i in chosen:
        im = Image.new("RGB", size, st.BACKGROUND)
        draw = ImageDraw.Draw(im)
        if scene.title:
            draw.text((size[0] / 2, (lay.title_y + 0.9) * cell), scene.title, fill=st.INK,
                      font=_font(cell * 0.6), anchor="ms")
        _frame(draw, scene.frames[i], lay, scene.heat_max, cell, top)
        images.append(im)
    return images


def _frame(draw, frame: Frame, lay: Layout, heat_max: int, cell: int, top: float) -> None:
    for panel in frame.panels:
        x0, y0 = lay.slots[panel.name]
        draw.text((x0 * cell, (y0 - 0.35) * cell + top), panel.title, fill=st.INK,
                  font=_font(cell * 0.5), anchor="ls")
        marks = []
        for c in panel.cells:
            x = round((x0 + c.col - panel.cols[0]) * cell)
            y = round((y0 + c.row - panel.rows[0]) * cell + top)
            draw.rectangle((x, y, x + cell, y + cell), fill=st.fill(c, heat_max), outline=st.GRID)
            if c.text:
                ink = st.MUTED if c.role in ("zero", "pad", "cut") or c.cropped else st.INK
                draw.text((x + cell / 2, y + cell / 2), c.text, fill=ink,
                          font=_font(st.font_size(c.text, cell)), anchor="mm")
            if c.mark:
                marks.append((x + 1, y + 1, x + cell - 1, y + cell - 1))
        for box in marks:
            draw.rectangle(box, outline=st.MARK, width=2)
        for b in panel.boxes:
            x = round((x0 + b.cols[0] - panel.cols[0]) * cell)
            y = round((y0 + b.rows[0] - panel.rows[0]) * cell + top)
            x1 = round((x0 + b.cols[1] - panel.cols[0]) * cell)
            y1 = round((y0 + b.rows[1] - panel.rows[0]) * cell + top)
            if b.role == "kept":
                draw.rectangle((x - 1, y - 1, x1 + 1, y1 + 1), outline=st.KEPT, width=3)
            else:
                draw.rectangle((x, y, x1, y1), outline=st.MARK, width=1)
    if frame.caption:
        from tconv.draw.svg import _wrap

        x = lay.slots[frame.panels[0].name][0] * cell
        for k, line in enumerate(_wrap(frame.caption, int(lay.width * CAPTION_CHARS))):
            draw.text((x, (lay.caption_y + 0.5 + k * 0.8) * cell + top), line, fill=st.INK,
                      font=_font(cell * 0.5), anchor="ls")


def png(scene: Scene, index: int | None = None, *, cell: int = CELL) -> bytes:
    """One frame as PNG bytes (default: the scene's static frame)."""
    im = frames(scene, [scene.static_frame if index is None else index], cell=cell)[0]
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _palette(scene: Scene) -> list[tuple[int, int, int]]:
    colours = [st.BACKGROUND, st.INK, st.MUTED, st.GRID, st.KEPT, st.MARK]
    for rgb in st.FILLS.values():
        colours += [rgb, st._mix(rgb, st._GREY, 0.55)]
    for count in range(min(scene.heat_max, st.HEAT_LEVELS) + 1):
        colours += [st.heat(count, scene.heat_max), st.heat(count, scene.heat_max, True)]
    for k in range(1, 8):  # greys for the edges of letters
        colours.append(st._mix(st.INK, st.BACKGROUND, k / 8))
    unique = list(dict.fromkeys(colours))
    return unique[:256]


def _to_palette(im, palette):
    """RGB -> P with ``palette``: exact colours stay exact, the rest (letter edges) go to the nearest."""
    import numpy as np

    Image, _, _ = _pillow()
    rgb = np.asarray(im, dtype=np.int32)
    flat = rgb.reshape(-1, 3)
    keys = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    uniq, inverse = np.unique(keys, return_inverse=True)
    pal = np.array(palette, dtype=np.int32)
    ucol = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1)
    nearest = ((ucol[:, None, :] - pal[None, :, :]) ** 2).sum(-1).argmin(1)
    out = Image.fromarray(nearest[inverse.ravel()].reshape(rgb.shape[:2]).astype(np.uint8), "P")
    out.putpalette([v for c in palette for v in c] + [0] * (3 * (256 - len(palette))))
    return out


def gif(scene: Scene, indices: Sequence[int] | None = None, *, cell: int = CELL) -> bytes:
    """An animated GIF of the chosen frames (default: all), looping, each held ``duration_ms``.

    Each frame after the first stores only the pixels that changed (the rest is the
    transparent index over the previous frame), which keeps a 64-step animation small.
    """
    import numpy as np

    Image, _, _ = _pillow()
    chosen = list(range(len(scene.frames))) if indices is None else [i % len(scene.frames) for i in indices]
    palette = _palette(scene)[:255]
    clear = len(palette)  # the transparent index: "unchanged since the previous frame"
    images = [_to_palette(im, palette) for im in frames(scene, chosen, cell=cell)]
    deltas, previous = [images[0]], np.asarray(images[0])
    for im in images[1:]:
        current = np.asarray(im)
        delta = current.copy()
        delta[current == previous] = clear
        out = Image.fromarray(delta, "P")
        out.putpalette(images[0].getpalette())
        deltas.append(out)
        previous = current
    buf = io.BytesIO()
    deltas[0].save(buf, format="GIF", save_all=True, append_images=deltas[1:], loop=0, optimize=False,
                   duration=[scene.frames[i].duration_ms for i in chosen], disposal=1, transparency=clear)
    return buf.getvalue()


def apng(scene: Scene, indices: Sequence[int] | None = None, *, cell: int = CELL) -> bytes:
    """An animated PNG of the chosen frames (default: all)."""
    chosen = list(range(len(scene.frames))) if indices is None else [i % len(scene.frames) for i in indices]
    images = frames(scene, chosen, cell=cell)
    buf = io.BytesIO()
    images[0].save(buf, format="PNG", save_all=True, append_images=images[1:], loop=0,
                   duration=[scene.frames[i].duration_ms for i in chosen], default_image=False)
    return buf.getvalue()
