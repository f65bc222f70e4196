"""The one image decoder: an image file to a uint8 (H, W, C) array in the spec's input shape.

Used by the folder and path-CSV sources and by ``convspec predict``, so training and
prediction read a file the same way. Pillow reads PNG, JPEG, BMP, GIF (first frame), WebP and
TIFF (first page). In order:

1. EXIF orientation is applied (a phone photo is upright, and its size is the upright one);
2. a size other than the spec's input is an error naming the file, unless a ``resize`` filter
   is given (``nearest``, ``bilinear``, ``bicubic``, ``lanczos``, ``box``, ``hamming``; the
   aspect ratio is not kept);
3. 16-bit images (Pillow modes ``I;16*``, and ``I`` from a 16-bit file) are scaled by their
   real bit depth to 8 bits: ``round(v * 255 / 65535)``; 32-bit integer and float images are
   refused;
4. palette images become RGB (or RGBA, with their transparency); transparency is composited
   over ``background`` (default black: MNIST's light figures on a dark ground). An image whose
   visible pixels all have the background's colour keeps its picture in the alpha channel only
   (what a browser canvas saves: black ink, transparent ground); its alpha is then read as ink
   of the opposite colour, so a canvas digit over black reads as the same light digit on dark;
5. grey becomes RGB (copied) or colour becomes grey (Pillow's ITU-R 601-2 luma) only as the
   spec's ``channels`` (1 or 3) say.

``image_header`` reads only the header (size and mode) and needs no NumPy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import DataError

if TYPE_CHECKING:
    import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff",
                    ".ppm", ".pgm", ".pbm")
NAMED_COLOURS = {"black": (0, 0, 0), "white": (255, 255, 255)}
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
_ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def parse_colour(text: str) -> tuple[int, int, int]:
    """``black``, ``white`` or ``#rrggbb`` as an (r, g, b) tuple of 0-255."""
    text = text.strip().lower()
    if text in NAMED_COLOURS:
        return NAMED_COLOURS[text]
    if len(text) == 7 and text.startswith("#"):
        try:
            return (int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16))
        except ValueError:
            pass
    raise DataError(f"background {text!r}: expected black, white or #rrggbb")


@dataclass(frozen=True)
class DecodeOptions:
    """How every file is read: the target (height, width, channels), the resize filter (None:
    a different size is an error) and the background colour for transparency."""

    height: int
    width: int
    channels: int
    resize: str | None = None
    background: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise DataError(f"image files are read as 1 (grey) or 3 (RGB) channels; the spec's "
                            f"input has {self.channels}")

    @classmethod
    def for_spec(cls, spec: Any, resize: str | None = None,
                 background: str = "black") -> DecodeOptions:
        i = spec.input
        return cls(i.height, i.width, i.channels, resize, parse_colour(background))


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says: upright size, Pillow mode and format."""

    width: int
    height: int
    mode: str
    format: str

    @property
    def is_colour(self) -> bool:
        return self.mode not in ("1", "L", "LA", "La", "I", "F", *_SIXTEEN_BIT)


@dataclass(frozen=True)
class Decoded:
    """A decoded image and what was done to it on the way."""

    pixels: np.ndarray  # (H, W, C) uint8
    resized_from: tuple[int, int] | None  # (width, height) before resizing
    alpha_only: bool  # the picture was in the alpha channel only


class ImageProblem(Exception):
    """A file that cannot be used; ``kind`` is 'unreadable' (may be skipped) or 'size'."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message


def _open(path: str | os.PathLike[str]) -> Any:
    from PIL import Image

    try:
        return Image.open(path)
    except FileNotFoundError:
        raise ImageProblem("unreadable", f"{path}: no such image file") from None
    except Exception as exc:  # Pillow raises many types for bad files
        raise ImageProblem("unreadable", f"{path}: not a readable image ({_why(exc)})") from None


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def image_header(path: str | os.PathLike[str]) -> ImageHeader:
    """The header of an image file (no pixels decoded); ``DataError`` naming the file."""
    try:
        with _open(path) as im:
            width, height = im.size
            orientation = im.getexif().get(0x0112)
            if orientation in _ROTATED:
                width, height = height, width
            return ImageHeader(width, height, im.mode, im.format or "?")
    except ImageProblem as exc:
        raise DataError(exc.message) from None
    except Exception as exc:
        raise DataError(f"{path}: not a readable image ({_why(exc)})") from None


def decode_image(path: str | os.PathLike[str], options: DecodeOptions) -> Decoded:
    """Read one file as ``options`` say. Raises ``ImageProblem`` ('unreadable' for a missing,
    corrupt or unsupported file, 'size' for a size other than the input without ``resize``)."""
    from PIL import ImageOps

    with _open(path) as im:
        try:
            im.seek(0)
            if im.getexif().get(0x0112, 1) != 1:  # only then: exif_transpose copies
                im = ImageOps.exif_transpose(im)
            size = im.size
            if size != (options.width, options.height) and options.resize is None:
                raise ImageProblem("size", (
                    f"{path}: the image is {size[0]}x{size[1]} (width x height), the spec's "
                    f"input is {options.width}x{options.height}"))
            pixels = _eight_bit(im, path)
        except ImageProblem:
            raise
        except Exception as exc:
            raise ImageProblem("unreadable", f"{path}: not a readable image ({_why(exc)})") \
                from None
    pixels, alpha_only = _composite(pixels, options.background)
    pixels = _to_channels(pixels, options.channels)
    resized = None
    if size != (options.width, options.height):
        pixels = _resize(pixels, options)
        resized = size
    return Decoded(pixels, resized, alpha_only)


def _eight_bit(im: Any, path: Any) -> np.ndarray:
    """(H, W, K) uint8 with K = 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA)."""
    import numpy as np

    mode = im.mode
    if mode in _SIXTEEN_BIT or mode == "I":
        values = np.asarray(im)
        bits = 16
        tag = getattr(im, "tag_v2", None)
        if tag is not None and tag.get(258):  # TIFF BitsPerSample
            bits = int(tag[258][0] if isinstance(tag[258], tuple) else tag[258])
        if bits > 16 or values.min(initial=0) < 0 or values.max(initial=0) >= 1 << bits:
            raise ImageProblem("unreadable", f"{path}: {bits}-bit integer images are not "
                               "supported; save it with 8 or 16 bits per channel")
        top = (1 << bits) - 1
        scaled = (values.astype(np.uint64) * 255 + top // 2) // top
        return scaled.astype(np.uint8)[..., None]
    if mode == "F":
        raise ImageProblem("unreadable", f"{path}: floating-point images are not supported; "
                           "save it with 8 or 16 bits per channel")
    has_alpha = "A" in mode or "a" in mode or "transparency" in im.info
    if mode in ("1", "L", "LA", "La"):
        target = "LA" if has_alpha else "L"
    else:  # RGB(A), palettes (with their transparency), CMYK, YCbCr, LAB, HSV ...
        target = "RGBA" if has_alpha else "RGB"
    array = np.asarray(im if im.mode == target else im.convert(target))
    return array[..., None] if array.ndim == 2 else array


def _composite(pixels: np.ndarray, background: tuple[int, int, int]) -> tuple[np.ndarray, bool]:
    """Alpha composited over the background (module docstring, step 4); (pixels, alpha_only)."""
    import numpy as np

    if pixels.shape[-1] not in (2, 4):
        return pixels, False
    colour, alpha = pixels[..., :-1], pixels[..., -1:]
    if alpha.min() == 255:
        return np.ascontiguousarray(colour), False
    if colour.shape[-1] == 1:  # grey with alpha: the background's grey (ITU-R 601-2 luma)
        r, g, b = background
        ground = np.array([(r * 299 + g * 587 + b * 114 + 500) // 1000], np.uint16)
    else:
        ground = np.array(background, np.uint16)
    visible = colour[alpha[..., 0] > 0]
    alpha_only = bool(len(visible)) and bool((visible == ground).all())
    ink = 255 - ground if alpha_only else colour.astype(np.uint16)
    a = alpha.astype(np.uint16)
    out = (ink * a + ground * (255 - a) + 127) // 255
    return out.astype(np.uint8), alpha_only


def _to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    import numpy as np
    from PIL import Image

    have = pixels.shape[-1]
    if have == channels:
        return pixels
    if channels == 3:  # grey -> RGB: the grey value in every channel
        return np.repeat(pixels, 3, axis=-1)
    grey = np.asarray(Image.fromarray(pixels, "RGB").convert("L"))
    return grey[..., None]


def _resize(pixels: np.ndarray, options: DecodeOptions) -> np.ndarray:
    import numpy as np
    from PIL import Image

    method = getattr(Image.Resampling, options.resize.upper())  # type: ignore[union-attr]
    image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    out = np.asarray(image.resize((options.width, options.height), method))
    return out[..., None] if out.ndim == 2 else out


def is_image_file(name: str) -> bool:
    """Whether a file name has one of ``IMAGE_EXTENSIONS`` (case-insensitive) and is not
    hidden (macOS ``._x.png`` resource forks, ``.DS_Store``)."""
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)
