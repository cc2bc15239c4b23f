"""Decoding images from users with bounded memory.

A small compressed file can hold a huge image: a 165 KB PNG of 8000 × 5000 pixels decodes to
160 MB, and every copy made while processing it (turning it upright, converting its mode) costs as
much again; eight such uploads at once took a server to 4.7 GB, and glibc kept 2.9 GB of it after.
So, for every image decoded here:

- the dimensions are read from the header first (Pillow opens lazily) and an image over the pixel
  budget is refused before anything is decoded;
- JPEG — the format of camera photos, often 12 to 50 megapixels — is decoded at a reduced scale
  (its DCT allows 1/2, 1/4, 1/8) close to the size wanted, so a 48 MP photo costs a few MB; other
  formats are decoded whole and so have a much smaller budget;
- the image is shrunk to the working size before anything else copies it;
- at most `concurrency` decodes run at once (in worker threads), and after each the allocator is
  asked to give freed memory back to the system (`malloc_trim`; glibc otherwise keeps it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import io
import warnings
from collections.abc import Callable
from typing import TypeVar

import anyio
from PIL import Image, ImageOps, UnidentifiedImageError

T = TypeVar("T")

# Pixels of an image decoded whole (PNG, WebP, GIF): 16 M pixels, 64 MB as RGBA.
MAX_DECODED_PIXELS = 16_000_000
# Pixels of a JPEG, which is decoded at a reduced scale: 50 M pixels (a 48 MP phone photo).
MAX_JPEG_PIXELS = 50_000_000
REDUCIBLE_FORMATS = frozenset({"JPEG"})


class ImageRejectedError(Exception):
    """The data is not an accepted image (`too_large` False) or has too many pixels (True)."""

    def __init__(self, message: str, *, too_large: bool) -> None:
        super().__init__(message)
        self.too_large = too_large


def pixel_budget(image_format: str | None) -> int:
    return MAX_JPEG_PIXELS if image_format in REDUCIBLE_FORMATS else MAX_DECODED_PIXELS


def decode_reduced(data: bytes, formats: frozenset[str], side: int) -> Image.Image:
    """The first frame of the image in `data`, upright, no larger than about `side` × 4 on its
    longer edge, with its original mode. Raises `ImageRejectedError`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in formats:
                    raise ImageRejectedError("not an accepted image format", too_large=False)
                budget = pixel_budget(image.format)
                if image.width * image.height > budget:
                    raise ImageRejectedError(
                        f"The image has more than {budget // 1_000_000} million pixels",
                        too_large=True,
                    )
                working = (side * 4, side * 4)
                if image.format in REDUCIBLE_FORMATS:
                    image.draft(image.mode, working)  # decode at 1/2, 1/4 or 1/8 scale
                image.seek(0)  # an animation's first frame
                image.load()
                orientation = image.getexif().get(0x0112)
                image.thumbnail(working, Image.Resampling.LANCZOS)
                small = image.copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejectedError("The image has too many pixels", too_large=True) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise ImageRejectedError("not an image", too_large=False) from None
    if orientation:
        exif = small.getexif()
        exif[0x0112] = orientation
        small.info["exif"] = exif.tobytes()
    return ImageOps.exif_transpose(small)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


def release_freed_memory() -> None:
    """Give memory freed by a large decode back to the system (glibc keeps it otherwise)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class ImageDecoding:
    """Runs image work in worker threads, `concurrency` at a time, releasing memory after each."""

    def __init__(self, concurrency: int = 2) -> None:
        self._limiter = anyio.CapacityLimiter(concurrency)

    async def run(self, work: Callable[[bytes], T], data: bytes) -> T:
        return await anyio.to_thread.run_sync(self._run, work, data, limiter=self._limiter)

    @staticmethod
    def _run(work: Callable[[bytes], T], data: bytes) -> T:
        try:
            return work(data)
        finally:
            release_freed_memory()
