"""Draws the web app manifest's PNG icons (static/img/icon-*.png) from the
logo's shape: a white speech bubble on the accent blue. Run once after
changing the logo; the PNGs are committed."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

ACCENT = (47, 91, 234, 255)
WHITE = (255, 255, 255, 255)
OUT = Path(__file__).resolve().parent.parent / "static" / "img"


def bubble(draw: ImageDraw.ImageDraw, size: int, scale: float) -> None:
    """The logo's bubble (a 32-unit design), `scale` of the icon wide, centred."""
    unit = size * scale / 20  # the bubble spans x 6..26 of the 32-unit logo
    left = (size - 20 * unit) / 2
    top = (size - 16 * unit) / 2  # y 10..26

    def at(x: float, y: float) -> tuple[float, float]:
        return (left + (x - 6) * unit, top + (y - 10) * unit)

    draw.rounded_rectangle([at(6, 10), at(26, 22)], radius=2 * unit, fill=WHITE)
    draw.polygon([at(10, 21), at(15, 21), at(10, 26)], fill=WHITE)


def icon(size: int, *, maskable: bool) -> Image.Image:
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if maskable:
        # Full bleed; the bubble inside the 80 % safe zone.
        draw.rectangle([0, 0, size, size], fill=ACCENT)
        bubble(draw, size, 0.5)
    else:
        draw.rounded_rectangle([0, 0, size - 1, size - 1], radius=size // 4, fill=ACCENT)
        bubble(draw, size, 0.64)
    return image.quantize(colors=16, method=Image.Quantize.FASTOCTREE)


def main() -> None:
    for name, size, maskable in (("icon-192.png", 192, False), ("icon-512.png", 512, False), ("icon-maskable-512.png", 512, True)):
        icon(size, maskable=maskable).save(OUT / name, optimize=True)
        print(name, (OUT / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
