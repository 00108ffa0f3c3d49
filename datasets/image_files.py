"""An image file's bytes as the 8-bit RGB pixels a viewer shows: one decoder for every path
(folder and TFRecord datasets, predict.py, convert_to_tfrecord.py), so that a photo gives
the same prediction however it was saved.

Pillow decodes, then: the EXIF orientation is applied (a phone's portrait photo stands up);
16-bit greyscale is scaled to 8 bits, not clipped; CMYK and palette images become RGB;
transparency is laid over white, as a browser's page shows it; greyscale is repeated into
three channels; an animation gives its first frame.
"""
import io
import re
import warnings

from PIL import Image, ImageOps
import numpy as np

from preflight import errors


# Pillow warns of images over 89 megapixels (a phone's 108 MP photo is one) without naming the
# file; it refuses those over twice that (DecompressionBombError: the image is skipped, named).
warnings.filterwarnings('ignore', category=Image.DecompressionBombWarning)

# Modes of more than 8 bits a channel, as Pillow opens 16-bit PNG and TIFF greyscale.
_WIDE_MODES = ('I;16', 'I;16B', 'I;16L', 'I')


def to_rgb(data):
    """uint8 [H, W, 3] of encoded image bytes; ImageError when they do not decode."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            if image.mode in _WIDE_MODES:
                return _wide_to_rgb(image)
            if image.mode == 'P':
                image = image.convert('RGBA' if 'transparency' in image.info else 'RGB')
            if image.mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La'):
                image = image.convert('RGBA')
                white = Image.new('RGBA', image.size, (255, 255, 255, 255))
                image = Image.alpha_composite(white, image)
            pixels = np.asarray(image.convert('RGB'), np.uint8)
    except Exception as e:  # Pillow's decoders raise many kinds: OSError, SyntaxError, ...
        # Pillow names the in-memory file it was given ('<_io.BytesIO object at 0x...>'): the
        # caller names the real one.
        why = re.sub(r'\s*<_io\.BytesIO object at 0x[0-9a-f]+>', '', ' '.join(str(e).split()))
        raise errors.ImageError(why[:120] or type(e).__name__) from e
    if not pixels.shape[0] or not pixels.shape[1]:
        raise errors.ImageError('no pixels')
    return pixels


def _wide_to_rgb(image):
    # 16-bit data in 0..65535 scales by 1/257: 65535 becomes 255, as a viewer shows it.
    grey = np.clip(np.round(np.asarray(image, np.float64) / 257.0), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def read_rgb(path):
    """to_rgb of a file (a local path, or any tf.io.gfile path); ImageError naming why when it
    cannot be read or decoded."""
    try:
        if '://' in path:
            import tensorflow as tf
            with tf.io.gfile.GFile(path, 'rb') as f:
                data = f.read()
        else:
            with open(path, 'rb') as f:
                data = f.read()
    except Exception as e:  # OSError, or TensorFlow's errors for a bucket path
        raise errors.ImageError('cannot read it (%s)' % (getattr(e, 'strerror', None) or
                                                   ' '.join(str(e).split())[:100])) from e
    return to_rgb(data)


def format_of(path):
    """Pillow's format name for writing `path`: its extension's, JPEG when it has none known."""
    extension = path.rsplit('.', 1)[-1].lower() if '.' in path else ''
    return Image.registered_extensions().get('.' + extension, 'JPEG')
