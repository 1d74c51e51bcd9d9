"""clean_image across the colour modes real uploads come in; the server-side cases are in
tests/web/test_uploads.py."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from appliance.core.errors import TooLarge, UnsupportedMedia
from appliance.core.images import ImageCleaner, ImageLimits, clean_image


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def reopened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize(("image", "fmt", "media_type", "mode"), [
    (Image.new("CMYK", (20, 10), (0, 50, 100, 0)), "JPEG", "image/jpeg", "CMYK"),
    (Image.new("L", (20, 10), 128), "JPEG", "image/jpeg", "L"),
    (Image.new("LA", (20, 10), (128, 40)), "PNG", "image/png", "LA"),
    (Image.new("I;16", (20, 10), 40000), "PNG", "image/png", "I;16"),
    (Image.new("RGBA", (20, 10), (1, 2, 3, 4)), "WEBP", "image/webp", "RGBA"),
    (Image.new("RGBA", (20, 10), (1, 2, 3, 0)).convert("P"), "GIF", "image/png", "P"),
])
def test_each_mode_comes_back_decodable_in_its_format(image: Image.Image, fmt: str, media_type: str,
                                                      mode: str) -> None:
    clean = clean_image(encoded(image, fmt), ImageLimits())
    assert clean.media_type == media_type and (clean.width, clean.height) == (20, 10)
    assert reopened(clean.data).mode == mode


def test_a_transparent_gif_keeps_its_transparency_when_scaled_down() -> None:
    gif = Image.new("P", (300, 100), 0)
    gif.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    gif.paste(1, (0, 0, 150, 100))
    clean = clean_image(encoded(gif, "GIF", transparency=0), ImageLimits(max_side=150))
    image = reopened(clean.data).convert("RGBA")
    assert image.size == (150, 50)
    assert image.getpixel((10, 10))[:3] == (0, 0, 255) and image.getpixel((140, 40))[3] == 0


def test_the_same_upload_gives_the_same_bytes_and_limits_hold() -> None:
    data = encoded(Image.effect_noise((300, 200), 40).convert("RGB"), "JPEG")
    limits = ImageLimits(max_pixels=60_000, max_side=0)
    assert clean_image(data, limits).data == clean_image(data, limits).data
    with pytest.raises(TooLarge):
        clean_image(data, ImageLimits(max_pixels=59_999))
    with pytest.raises(UnsupportedMedia):
        clean_image(b"GIF89a" + b"\x00" * 40, limits)


async def test_the_cleaner_cleans_concurrent_uploads_on_worker_threads() -> None:
    cleaner = ImageCleaner(ImageLimits(max_side=64), concurrency=2)
    data = encoded(Image.new("RGB", (640, 480), (9, 9, 9)), "PNG")
    results = await asyncio.gather(*(cleaner.clean(data) for _ in range(6)))
    assert {(r.width, r.height) for r in results} == {(64, 48)} and len({r.data for r in results}) == 1
