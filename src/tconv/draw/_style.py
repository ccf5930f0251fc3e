"""Colours and sizes shared by the renderers (private). Every fill is an exact RGB triple, so a
test can read a decoded PNG/GIF frame back into roles and tap counts."""

from __future__ import annotations

from tconv.draw.scene import Cell, Layout, Scene

RGB = tuple[int, int, int]

BACKGROUND: RGB = (255, 255, 255)
INK: RGB = (31, 41, 51)
MUTED: RGB = (90, 100, 112)
GRID: RGB = (200, 206, 214)
KEPT: RGB = (29, 78, 216)      # outline of the transposed convolution's output window
MARK: RGB = (220, 38, 38)      # the current stamp / window
FILLS: dict[str, RGB] = {
    "input": (219, 234, 254),
    "todo": (238, 242, 247),
    "done": (147, 197, 253),
    "current": (245, 158, 11),
    "kernel": (253, 230, 138),
    "value": (255, 255, 255),
    "zero": (243, 244, 246),
    "pad": (226, 232, 240),
    "cut": (180, 186, 196),
    "entry": (253, 230, 138),
    "blank": (255, 255, 255),
    "vector": (219, 234, 254),
}
_HOT: RGB = (234, 88, 12)
_GREY: RGB = (150, 156, 166)
#: heat levels with distinct colours (counts beyond share the hottest)
HEAT_LEVELS = 200


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))  # type: ignore[return-value]


def heat(count: int, heat_max: int, cropped: bool = False) -> RGB:
    """Fill of a cell reached by ``count`` taps: white (0) to orange (``heat_max``);
    cropped cells are the same ramp greyed."""
    top = max(1, min(heat_max, HEAT_LEVELS))
    colour = _mix(BACKGROUND, _HOT, min(count, top) / top)
    return _mix(colour, _GREY, 0.55) if cropped else colour


def fill(cell: Cell, heat_max: int) -> RGB:
    if cell.role == "heat":
        return heat(cell.count or 0, heat_max, cell.cropped)
    colour = FILLS.get(cell.role, BACKGROUND)
    return _mix(colour, _GREY, 0.55) if cell.cropped else colour


def hex_colour(rgb: RGB) -> str:
    return "#%02x%02x%02x" % rgb


def font_size(text: str, cell: float) -> float:
    """Largest size (px) at which ``text`` fits a cell, capped at 42% of it."""
    return round(min(cell * 0.42, cell * 1.55 / max(len(text), 1)), 1)


def canvas(scene: Scene, lay: Layout, cell: float) -> tuple[float, float, float, float]:
    """``(width, title height, frame height, y shift of a frame's layout)`` in px: the title
    line only when the scene has a title, and each frame without the layout's own title band."""
    title_h = (lay.title_y + 1.4) * cell if scene.title else 0.0
    frame_h = (lay.height - lay.title_y - 1.0) * cell
    return lay.width * cell, title_h, frame_h, title_h - (lay.title_y + 1.0) * cell
