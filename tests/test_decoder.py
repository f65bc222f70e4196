"""convspec.data.decoder: every format, bit depth, palette, transparency, orientation, channel
conversion and size rule, on files written here with Pillow (and the shared canvas case)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convspec.data.decoder import (
    DecodeOptions,
    ImageProblem,
    decode_image,
    image_header,
    is_image_file,
    parse_colour,
)
from convspec.errors import DataError

CASES = Path("/work/shared/cases")
if not CASES.is_dir():
    CASES = Path(__file__).resolve().parents[2] / "shared" / "cases"
GREY = DecodeOptions(8, 6, 1)
RGB = DecodeOptions(8, 6, 3)


@pytest.fixture
def digit() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (8, 6), dtype=np.uint8)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".gif", ".webp", ".tif", ".ppm"])
def test_lossless_formats_read_back_exactly(tmp_path, digit, ext):
    path = tmp_path / f"x{ext}"
    kwargs = {"lossless": True} if ext == ".webp" else {}
    Image.fromarray(digit).save(path, **kwargs)
    out = decode_image(path, GREY)
    assert out.pixels.dtype == np.uint8 and out.pixels.shape == (8, 6, 1)
    np.testing.assert_array_equal(out.pixels[..., 0], digit)
    assert out.resized_from is None and not out.alpha_only


def test_jpeg_reads_close_to_the_original(tmp_path, digit):
    path = tmp_path / "x.jpg"
    Image.fromarray(digit).save(path, quality=100)
    out = decode_image(path, GREY)
    assert out.pixels.shape == (8, 6, 1)
    assert np.abs(out.pixels[..., 0].astype(int) - digit).mean() < 8


def test_gif_reads_the_first_frame(tmp_path, digit):
    frames = [Image.fromarray(digit), Image.fromarray(255 - digit)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    np.testing.assert_array_equal(decode_image(path, GREY).pixels[..., 0], digit)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_sixteen_bit_images_are_scaled_by_their_bit_depth(tmp_path, ext):
    values = np.array([[0, 257, 32768, 65535, 1000, 65280]] * 8, np.uint16)
    path = tmp_path / f"deep{ext}"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    out = decode_image(path, GREY).pixels[..., 0]
    expected = np.round(values[0].astype(np.int64) * 255 / 65535).astype(np.uint8)
    np.testing.assert_array_equal(out[0], expected)
    np.testing.assert_array_equal(out[0], [0, 1, 128, 255, 4, 254])


def test_palette_with_transparency_is_composited(tmp_path):
    image = Image.new("P", (6, 8))
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 3, 8))  # left half red, right half palette entry 0 (transparent)
    path = tmp_path / "pal.png"
    image.save(path, transparency=0)
    out = decode_image(path, RGB).pixels
    assert (out[:, :3] == [255, 0, 0]).all() and (out[:, 3:] == 0).all()
    white = decode_image(path, DecodeOptions(8, 6, 3, background=(255, 255, 255))).pixels
    assert (white[:, 3:] == 255).all() and (white[:, :3] == [255, 0, 0]).all()


def test_half_transparent_colour_is_blended_with_the_background(tmp_path):
    rgba = np.zeros((8, 6, 4), np.uint8)
    rgba[...] = [200, 100, 0, 128]
    path = tmp_path / "half.png"
    Image.fromarray(rgba, "RGBA").save(path)
    out = decode_image(path, DecodeOptions(8, 6, 3, background=(0, 0, 255))).pixels
    np.testing.assert_array_equal(out[0, 0], [100, 50, 127])


def test_canvas_png_gives_the_plain_digit_over_black():
    """The shared case: ink only in the alpha channel, transparent ground."""
    options = DecodeOptions(28, 28, 1)
    canvas = decode_image(CASES / "predict-canvas-rgba.png", options)
    plain = decode_image(CASES / "predict-plain.png", options)
    assert canvas.alpha_only and not plain.alpha_only
    np.testing.assert_array_equal(canvas.pixels, plain.pixels)
    over_white = decode_image(CASES / "predict-canvas-rgba.png",
                              DecodeOptions(28, 28, 1, background=(255, 255, 255)))
    assert not over_white.alpha_only  # black ink on white is an ordinary picture
    np.testing.assert_array_equal(over_white.pixels, 255 - plain.pixels)


def test_exif_orientation_is_applied(tmp_path, digit):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "phone.jpg"
    Image.fromarray(digit.T.copy()).save(path, exif=exif, quality=100)  # stored 6x8 (w x h)
    assert Image.open(path).size == (8, 6)
    header = image_header(path)
    assert (header.width, header.height) == (6, 8)
    assert decode_image(path, GREY).pixels.shape == (8, 6, 1)


def test_grey_and_rgb_convert_only_as_the_spec_says(tmp_path, digit):
    path = tmp_path / "grey.png"
    Image.fromarray(digit).save(path)
    rgb = decode_image(path, RGB).pixels
    assert rgb.shape == (8, 6, 3) and (rgb == digit[..., None]).all()
    colour = np.random.default_rng(1).integers(0, 256, (8, 6, 3), dtype=np.uint8)
    path = tmp_path / "colour.png"
    Image.fromarray(colour).save(path)
    np.testing.assert_array_equal(decode_image(path, RGB).pixels, colour)
    luma = np.asarray(Image.fromarray(colour).convert("L"))
    np.testing.assert_array_equal(decode_image(path, GREY).pixels[..., 0], luma)


def test_another_size_is_an_error_naming_the_file_unless_resized(tmp_path, digit):
    path = tmp_path / "big.png"
    Image.fromarray(digit).resize((12, 16)).save(path)
    with pytest.raises(ImageProblem) as info:
        decode_image(path, GREY)
    assert info.value.kind == "size"
    assert str(path) in info.value.message and "12x16" in info.value.message
    for method in ("nearest", "bilinear", "lanczos"):
        out = decode_image(path, DecodeOptions(8, 6, 1, resize=method))
        assert out.pixels.shape == (8, 6, 1) and out.resized_from == (12, 16)
    expected = np.asarray(Image.open(path).resize((6, 8), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(
        decode_image(path, DecodeOptions(8, 6, 1, resize="bilinear")).pixels[..., 0], expected)


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n"])
def test_corrupt_files_are_unreadable_naming_the_file(tmp_path, content):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(ImageProblem) as info:
        decode_image(path, GREY)
    assert info.value.kind == "unreadable" and str(path) in info.value.message
    with pytest.raises(DataError, match="broken.png: not a readable image"):
        image_header(path)


def test_truncated_png_is_unreadable(tmp_path, digit):
    buffer = io.BytesIO()
    Image.fromarray(np.tile(digit, (20, 20))).save(buffer, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[:200])
    with pytest.raises(ImageProblem, match="cut.png: not a readable image"):
        decode_image(path, DecodeOptions(160, 120, 1))


def test_missing_file_and_float_images(tmp_path):
    with pytest.raises(ImageProblem, match="no such image file"):
        decode_image(tmp_path / "nope.png", GREY)
    path = tmp_path / "float.tif"
    Image.fromarray(np.zeros((8, 6), np.float32)).save(path)
    with pytest.raises(ImageProblem, match="floating-point images are not supported"):
        decode_image(path, GREY)


def test_options_and_names():
    with pytest.raises(DataError, match="1 \\(grey\\) or 3 \\(RGB\\) channels"):
        DecodeOptions(8, 8, 4)
    assert parse_colour("white") == (255, 255, 255) and parse_colour("#FF8000") == (255, 128, 0)
    with pytest.raises(DataError, match="black, white or #rrggbb"):
        parse_colour("red")
    assert is_image_file("a.PNG") and is_image_file("b.jpeg") and not is_image_file("c.txt")
    assert not is_image_file("._a.png") and not is_image_file(".DS_Store")
