"""Scene -> terminal text: Unicode box drawing, ANSI colour only when asked.

Panels are stacked top to bottom. Without colour, a cropped cell is written
``░2░`` and a cell of the current stamp or window ``[w4]``; with colour they are
greyed and red instead, and tallies get a heat background.
"""

from __future__ import annotations

from tconv.draw import _style as st
from tconv.draw.scene import Panel, Scene

__all__ = ["render"]


def render(scene: Scene, index: int | None = None, *, colour: bool = False) -> str:
    """One frame of ``scene`` as text (default: its static frame)."""
    frame = scene.frames[scene.static_frame if index is None else index]
    out = [scene.title] if scene.title else []
    for panel in frame.panels:
        out.append(_panel(panel, scene.heat_max, colour))
    if frame.caption:
        out.append(frame.caption)
    if not colour and any(c.cropped for p in frame.panels for c in p.cells):
        out.append("\u2591n\u2591 cropped cell, [n] current step")
    return "\n".join(out) + "\n"


def _panel(panel: Panel, heat_max: int, colour: bool) -> str:
    width = max([len(c.text) for c in panel.cells] + [1])
    grid: dict[tuple[int, int], str] = {}
    for c in panel.cells:
        text = c.text.center(width)
        if colour:
            body = f" {text} "
            r, g, b = st.fill(c, heat_max)
            style = f"48;2;{r};{g};{b}"
            fg = "1;38;2;220;38;38" if c.mark else "38;2;31;41;51"
            body = f"\x1b[{style};{fg}m{body}\x1b[0m"
        elif c.mark:
            body = f"[{text}]"
        elif c.cropped:
            body = f"\u2591{text}\u2591"
        else:
            body = f" {text} "
        grid[(c.row, c.col)] = body
    blank = " " * (width + 2)
    cols = range(panel.cols[0], panel.cols[1])
    rule = "\u2500" * (width + 2)
    lines = [panel.title,
             "\u250c" + "\u252c".join(rule for _ in cols) + "\u2510"]
    for k, r in enumerate(range(panel.rows[0], panel.rows[1])):
        lines.append("\u2502" + "\u2502".join(grid.get((r, c), blank) for c in cols) + "\u2502")
        if k < panel.height - 1:
            lines.append("\u251c" + "\u253c".join(rule for _ in cols) + "\u2524")
    lines.append("\u2514" + "\u2534".join(rule for _ in cols) + "\u2518")
    return "\n".join(lines)

