"""Every path decodes an image file to the 8-bit RGB a viewer shows, and the same way."""
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from datasets import decoding
from datasets import image_files
from preflight import errors
import predict

COLOURS = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]],
                    [[255, 255, 0], [0, 255, 255], [255, 0, 255]]], np.uint8)


def exif_rotated(path):
    """The 2x3 colours stored turned on their side, with EXIF orientation 6 (rotate 90 CW to
    view): a viewer shows them as COLOURS."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(COLOURS, 1)).save(path, exif=exif)
    return COLOURS


def sixteen_bit_grey(path):
    values = np.array([[0, 257 * 128, 65535]], np.uint16)
    Image.fromarray(values).save(path)  # a 16-bit greyscale PNG
    return np.repeat(np.array([[0, 128, 255]], np.uint8)[..., None], 3, axis=2)


def palette_with_transparency(path):
    image = Image.fromarray(COLOURS).convert('P', palette=Image.ADAPTIVE, colors=8)
    index = image.getpixel((0, 0))  # the red corner becomes transparent
    image.save(path, transparency=index)
    expected = COLOURS.copy()
    expected[0, 0] = 255  # over white
    return expected


def rgba_half_transparent(path):
    pixels = np.dstack([COLOURS, np.full((2, 3), 255, np.uint8)])
    pixels[1, 2, 3] = 0
    Image.fromarray(pixels, 'RGBA').save(path)
    expected = COLOURS.copy()
    expected[1, 2] = 255
    return expected


def greyscale(path):
    grey = np.array([[10, 120, 250]], np.uint8)
    Image.fromarray(grey).save(path)
    return np.repeat(grey[..., None], 3, axis=2)


def cmyk_jpeg(path):
    Image.fromarray(np.repeat(np.repeat(COLOURS, 8, 0), 8, 1)).convert('CMYK').save(
        path, quality=100)
    with Image.open(path) as image:  # what a viewer shows is Pillow's own conversion
        return np.asarray(image.convert('RGB'))


CASES = [(exif_rotated, 'png'), (sixteen_bit_grey, 'png'), (palette_with_transparency, 'png'),
         (rgba_half_transparent, 'png'), (greyscale, 'png'), (palette_with_transparency, 'gif'),
         (cmyk_jpeg, 'jpg')]


@pytest.mark.parametrize('make,ext', CASES, ids=['%s.%s' % (m.__name__, e) for m, e in CASES])
def test_every_path_shows_what_a_viewer_shows(tmp_path, make, ext):
    path = str(tmp_path / ('image.' + ext))
    expected = make(path)
    np.testing.assert_array_equal(image_files.read_rgb(path), expected)
    np.testing.assert_array_equal(predict.read_image(path), expected)
    label = tf.constant(0, tf.int64)
    from_file, ok = decoding.decode(tf.constant(path), tf.constant(path), label, 2, is_path=True)
    assert bool(ok)
    np.testing.assert_array_equal(from_file, expected)
    with open(path, 'rb') as f:  # a TFRecord holds the file's bytes
        from_bytes, ok = decoding.decode(tf.constant(f.read()), tf.constant('r#0'), label, 2)
    assert bool(ok)
    np.testing.assert_array_equal(from_bytes, expected)


def test_what_is_not_an_image_is_one_line(tmp_path):
    path = tmp_path / 'cut.png'
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(buffer, 'PNG')
    path.write_bytes(buffer.getvalue()[:60])
    with pytest.raises(errors.ImageError) as error:
        image_files.read_rgb(str(path))
    assert '\n' not in str(error.value) and str(error.value)
    with pytest.raises(errors.ImageError, match='cannot read it'):
        image_files.read_rgb(str(tmp_path / 'missing.png'))
