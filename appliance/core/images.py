"""Uploaded images, decoded for real and re-encoded, never trusted as sent.

An upload is opened by Pillow, restricted to its PNG, JPEG, GIF and WebP decoders (what the
client says the type is does not matter); its declared size is checked against a pixel budget
before any pixel is decoded, so a header claiming 2³¹ × 2³¹ costs nothing. The whole image is
then decoded (truncated or corrupt data is refused), turned upright by its EXIF orientation,
shrunk to fit ``max_side`` and written out anew: EXIF (GPS included), XMP, ICC profiles, comments
and text chunks are not carried over. JPEG stays JPEG (quality 90), PNG stays PNG (optimized),
WebP stays WebP, and a GIF becomes the PNG of its first frame.

Re-encoding is deterministic, so the same upload gives the same bytes and the same
content address every time. CPU-bound: :class:`ImageCleaner` runs it on worker threads.
"""

from __future__ import annotations

import asyncio
import io

import msgspec
from PIL import GifImagePlugin, Image, ImageOps, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

from appliance.core.errors import TooLarge, UnsupportedMedia

# The only decoders tried (imported by name, so a frozen build surely carries them).
_FORMATS = [str(plugin.format) for plugin in (PngImagePlugin.PngImageFile, JpegImagePlugin.JpegImageFile,
                                              GifImagePlugin.GifImageFile, WebPImagePlugin.WebPImageFile)]
# What each decoded format is written as; MPO is the multi-picture JPEG many phones write.
_OUTPUT = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "GIF": "PNG", "WEBP": "WEBP"}
_MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_SAVE_OPTIONS: dict[str, dict[str, object]] = {
    "JPEG": {"quality": 90},
    "PNG": {"optimize": True},
    "WEBP": {"quality": 90, "method": 4},
}
_JPEG_MODES = ("L", "RGB", "CMYK")
_UNSUPPORTED = "not an image Pillow can decode as PNG, JPEG, GIF or WebP"


class ImageLimits(msgspec.Struct, frozen=True, kw_only=True):
    # Most pixels (width × height, as the file declares them) decoded for one upload.
    max_pixels: int = 25_000_000
    # Longest side of the stored image; larger ones are scaled down. 0 keeps the size.
    max_side: int = 2048


class CleanImage(msgspec.Struct, frozen=True, kw_only=True):
    media_type: str
    data: bytes
    width: int
    height: int


def clean_image(data: bytes, limits: ImageLimits) -> CleanImage:
    """The upload decoded, upright, without metadata and re-encoded.

    Raises TooLarge when the image has more pixels than ``limits.max_pixels`` and
    UnsupportedMedia for anything that is not a complete, decodable PNG, JPEG, GIF or WebP.
    """
    try:
        opened = Image.open(io.BytesIO(data), formats=_FORMATS)
        output = _OUTPUT.get(str(opened.format))
        if output is None:
            raise UnsupportedMedia(_UNSUPPORTED)
        _check_pixels(opened.size, limits)
        if opened.format == "PNG":
            _verify_png(data)
        image = _fit_mode(_decode(opened, limits), output)
        buffer = io.BytesIO()
        image.save(buffer, format=output, **_SAVE_OPTIONS[output])
    except (TooLarge, UnsupportedMedia):
        raise
    except Image.DecompressionBombError:
        raise TooLarge(f"image has more pixels than the limit of {limits.max_pixels:,}") from None
    except Exception:  # Pillow reports bad input with many exception types; all mean the same here
        raise UnsupportedMedia(_UNSUPPORTED) from None
    return CleanImage(media_type=_MEDIA_TYPES[output], data=buffer.getvalue(), width=image.width,
                      height=image.height)


class ImageCleaner:
    """:func:`clean_image` on worker threads, a few at a time: one decode may briefly hold a few
    hundred megabytes (25 million RGBA pixels are 100 MB), so concurrent uploads wait their turn
    rather than multiply that."""

    def __init__(self, limits: ImageLimits | None = None, *, concurrency: int = 2) -> None:
        self.limits = limits or ImageLimits()
        self._slots = asyncio.Semaphore(concurrency)

    async def clean(self, data: bytes) -> CleanImage:
        async with self._slots:
            return await asyncio.to_thread(clean_image, data, self.limits)


def _check_pixels(size: tuple[int, int], limits: ImageLimits) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise UnsupportedMedia(_UNSUPPORTED)
    if width * height > limits.max_pixels:
        raise TooLarge(f"image is {width} × {height} pixels; the limit is {limits.max_pixels:,} pixels")


def _verify_png(data: bytes) -> None:
    """Every chunk's checksum and the end marker: a PNG cut short or altered is refused, even
    when its pixels happen to decode."""
    with Image.open(io.BytesIO(data), formats=["PNG"]) as probe:
        probe.verify()


def _decode(image: Image.Image, limits: ImageLimits) -> Image.Image:
    """Decode the first frame fully, upright and within ``max_side``; metadata left behind."""
    if image.format in ("JPEG", "MPO") and limits.max_side:
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still covers max_side.
        image.draft(image.mode, (limits.max_side, limits.max_side))
    image.load()  # raises for truncated or corrupt data (truncated images are not accepted)
    ImageOps.exif_transpose(image, in_place=True)
    transparency = image.info.get("transparency")
    image.info.clear()  # EXIF, XMP, ICC profile, comments, PNG text chunks, GIF extensions
    if transparency is not None:
        image.info["transparency"] = transparency
    if limits.max_side and max(image.size) > limits.max_side:
        if image.mode in ("P", "1") or transparency is not None:
            image = image.convert("RGBA")  # scale colours, not palette indices
        image.thumbnail((limits.max_side, limits.max_side), Image.Resampling.LANCZOS)
    return image


def _fit_mode(image: Image.Image, output: str) -> Image.Image:
    """Convert to a mode the output format can write (alpha kept where the format has it)."""
    if output == "JPEG" and image.mode not in _JPEG_MODES:
        return image.convert("RGB")
    if output == "WEBP" and image.mode not in ("RGB", "RGBA"):
        has_alpha = "A" in image.mode or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    if output == "PNG" and image.mode not in ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"):
        return image.convert("RGBA" if "A" in image.mode else "RGB")
    return image
