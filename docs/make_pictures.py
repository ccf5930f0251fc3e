"""Make the README's pictures of the seed case: 8 -> 16 cells, kernel 3, stride 2.

    python docs/make_pictures.py          # writes docs/img/seed-keras.svg, seed-torch.svg, seed-keras.gif

Keras 'same' and PyTorch padding=1, output_padding=1 both map 8x8 to 16x16, but cut the
17x17 full scatter on opposite borders: Keras the last row and column, PyTorch the first.
Every cell is computed by tconv.draw from the same Geometry the kernels run.
"""

from __future__ import annotations

from pathlib import Path

import tconv

HERE = Path(__file__).resolve().parent / "img"
KERAS = "keras.Conv2DTranspose(512, 3, strides=2, padding='same')"
TORCH = "torch.nn.ConvTranspose2d(1024, 512, 3, stride=2, padding=1, output_padding=1)"
LIMIT = 300_000  # bytes per picture


def main() -> None:
    HERE.mkdir(parents=True, exist_ok=True)
    pictures = {
        "seed-keras.svg": tconv.draw(KERAS, (8, 8, 1024), view="scatter", format="svg", cell=20),
        "seed-torch.svg": tconv.draw(TORCH, (1024, 8, 8), view="scatter", format="svg", cell=20),
        "seed-keras.gif": tconv.draw(KERAS, (8, 8, 1024), view="scatter", format="gif", cell=20),
    }
    for name, picture in pictures.items():
        path = HERE / name
        picture.save(path)
        size = path.stat().st_size
        print(f"{path.relative_to(HERE.parent.parent)}: {size:,} bytes")
        if size > LIMIT:
            raise SystemExit(f"{name} is {size:,} bytes, more than {LIMIT:,}")


if __name__ == "__main__":
    main()
