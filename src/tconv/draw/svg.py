"""Scene -> SVG text (hand-written; no dependency).

Every cell is a ``<rect class="cell ROLE [cropped] [mark]">`` carrying ``data-row``,
``data-col`` and, for tallies, ``data-count``; panels are ``<g class="panel"
data-name=...>``; outlines are ``<rect class="box ROLE">``. So the picture can be read
back (the tests do) as well as looked at.
"""

from __future__ import annotations

from typing import Sequence
from xml.sax.saxutils import escape

from tconv.draw import _style as st
from tconv.draw.scene import CAPTION_CHARS, Frame, Layout, Scene, layout

__all__ = ["render"]

CELL = 24  # px per cell


def render(scene: Scene, frames: Sequence[int] | None = None, *, cell: int = CELL) -> str:
    """SVG of the chosen frames of ``scene`` stacked top to bottom (default: its static frame)."""
    lay = layout(scene)
    chosen = [scene.static_frame] if frames is None else list(frames)
    chosen = [i % len(scene.frames) for i in chosen]
    width, title_h, frame_h, top = st.canvas(scene, lay, cell)
    height = title_h + frame_h * len(chosen)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" '
           f'data-view="{scene.view}">',
           f'<style>.cell{{stroke:{st.hex_colour(st.GRID)};stroke-width:1}}'
           f'text{{fill:{st.hex_colour(st.INK)};text-anchor:middle;dominant-baseline:central}}'
           f'text.m{{fill:{st.hex_colour(st.MUTED)}}}text.l{{text-anchor:start;dominant-baseline:auto}}'
           f'.mark{{fill:none;stroke:{st.hex_colour(st.MARK)};stroke-width:2}}</style>',
           f'<rect width="100%" height="100%" fill="{st.hex_colour(st.BACKGROUND)}"/>']
    if scene.title:
        out.append(f'<text class="title" x="{lay.width * cell / 2:.1f}" y="{(lay.title_y + 0.9) * cell:.1f}" '
                   f'font-size="{_n(cell * 0.6)}" font-weight="bold">{escape(scene.title)}</text>')
    for n, index in enumerate(chosen):
        dy = top + n * frame_h
        out.append(f'<g class="frame" data-index="{index}" data-kind="{scene.frames[index].kind}" '
                   f'transform="translate(0 {dy:.1f})">')
        out.extend(_frame(scene.frames[index], lay, scene.heat_max, cell))
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _frame(frame: Frame, lay: Layout, heat_max: int, cell: int) -> list[str]:
    out = []
    for panel in frame.panels:
        x0, y0 = lay.slots[panel.name]
        out.append(f'<g class="panel" data-name="{panel.name}" data-rows="{panel.rows[0]} {panel.rows[1]}" '
                   f'data-cols="{panel.cols[0]} {panel.cols[1]}">')
        out.append(f'<text class="l panel-title" x="{_n(x0 * cell)}" y="{_n((y0 - 0.35) * cell)}" '
                   f'font-size="{_n(cell * 0.5)}">{escape(panel.title)}</text>')
        marks = []
        for c in panel.cells:
            x = (x0 + c.col - panel.cols[0]) * cell
            y = (y0 + c.row - panel.rows[0]) * cell
            classes = " ".join(["cell", c.role] + (["cropped"] if c.cropped else []) + ([c.mark] if c.mark else []))
            count = f' data-count="{c.count}"' if c.count is not None else ""
            out.append(f'<rect class="{classes}" data-row="{c.row}" data-col="{c.col}"{count} x="{_n(x)}" '
                       f'y="{_n(y)}" width="{cell}" height="{cell}" fill="{st.hex_colour(st.fill(c, heat_max))}"/>')
            if c.text:
                muted = ' class="m"' if c.role in ("zero", "pad", "cut") or c.cropped else ""
                out.append(f'<text{muted} x="{_n(x + cell / 2)}" y="{_n(y + cell / 2)}" '
                           f'font-size="{st.font_size(c.text, cell):g}">{escape(c.text)}</text>')
            if c.mark:
                marks.append(f'<rect class="mark {c.mark}" x="{_n(x + 1.5)}" y="{_n(y + 1.5)}" '
                             f'width="{cell - 3}" height="{cell - 3}"/>')
        out.extend(marks)
        for b in panel.boxes:
            x = (x0 + b.cols[0] - panel.cols[0]) * cell
            y = (y0 + b.rows[0] - panel.rows[0]) * cell
            w = (b.cols[1] - b.cols[0]) * cell
            h = (b.rows[1] - b.rows[0]) * cell
            colour = st.KEPT if b.role == "kept" else st.MARK
            width = 3 if b.role == "kept" else 1.5
            out.append(f'<rect class="box {b.role}" data-rows="{b.rows[0]} {b.rows[1]}" '
                       f'data-cols="{b.cols[0]} {b.cols[1]}" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
                       f'height="{h:.1f}" fill="none" stroke="{st.hex_colour(colour)}" stroke-width="{width}"/>')
        out.append("</g>")
    if frame.caption:
        for k, line in enumerate(_wrap(frame.caption, int(lay.width * CAPTION_CHARS))):
            out.append(f'<text class="l caption" x="{_n(lay.slots[frame.panels[0].name][0] * cell)}" '
                       f'y="{_n((lay.caption_y + 0.5 + k * 0.8) * cell)}" font-size="{_n(cell * 0.5)}">'
                       f'{escape(line)}</text>')
    return out


def _n(v: float) -> str:
    """A coordinate, without a needless decimal."""
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + [line] if line else lines

