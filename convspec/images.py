"""Read image files into a float32 NHWC batch that matches a spec's input."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .errors import ConvspecError


def load_images(paths: Sequence[str], spec, *, invert: bool = False,
                warn: Callable[[str], None] = print) -> np.ndarray:
    """Decode, convert to the spec's channels, resize (with a warning) and scale to [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    h, w, c = spec.input.height, spec.input.width, spec.input.channels
    batch = np.empty((len(paths), h, w, c), dtype=np.float32)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as img:
                img = img.convert("L" if c == 1 else "RGB")
                if img.size != (w, h):
                    warn(f"warning: {path} is {img.size[0]}x{img.size[1]}; resized to {w}x{h}")
                    img = img.resize((w, h), Image.Resampling.BILINEAR)
                arr = np.asarray(img, dtype=np.float32) / 255.0
        except FileNotFoundError:
            raise ConvspecError(f"{path}: no such image file") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise ConvspecError(f"{path}: not a readable image ({exc})") from None
        if c not in (1, 3):
            raise ConvspecError(f"spec {spec.name!r} expects {c} channels; images can be "
                                f"read as 1 (grayscale) or 3 (RGB) channels only")
        arr = arr.reshape(h, w, c)
        if invert:
            arr = 1.0 - arr
        elif c == 1 and arr.mean() > 0.5:
            warn(f"warning: {path} looks like a dark figure on a light background; MNIST "
                 f"images are light on dark, so consider --invert")
        batch[i] = arr
    return batch
