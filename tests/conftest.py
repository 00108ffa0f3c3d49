"""A tiny CIFAR-10 in the official layout that a small MobileNet learns in a few steps."""
import pickle

import numpy as np
import pytest
from PIL import Image

import data_utils

CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']


def learnable_batch(n, seed):
    """Each class is one colour plus noise: separable, yet not a single pixel lookup."""
    rng = np.random.RandomState(seed)
    labels = np.arange(n) % 10
    colours = np.random.RandomState(99).randint(0, 256, (10, 3))
    images = colours[labels][:, :, None, None] + rng.randint(-30, 31, (n, 3, 32, 32))
    data = np.clip(images, 0, 255).astype(np.uint8).reshape(n, 3072)
    return {b'batch_label': b'tiny', b'data': data, b'labels': [int(x) for x in labels],
            b'filenames': [b'%d.png' % i for i in range(n)]}


def write_learnable_cifar(directory, per_batch=32, test_size=40):
    directory.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(data_utils.TRAIN_FILES):
        (directory / name).write_bytes(pickle.dumps(learnable_batch(per_batch, i), protocol=2))
    (directory / data_utils.TEST_FILE).write_bytes(
        pickle.dumps(learnable_batch(test_size, 10), protocol=2))
    meta = {b'label_names': [c.encode() for c in CLASSES], b'num_vis': 3072}
    (directory / data_utils.META_FILE).write_bytes(pickle.dumps(meta, protocol=2))
    return directory


@pytest.fixture(scope='session')
def tiny_cifar(tmp_path_factory):
    """160 training and 40 test images in the official python-pickle layout."""
    return write_learnable_cifar(tmp_path_factory.mktemp('cifar'))


def own_images(root):
    """3 classes of mixed images: sizes, greyscale, PNG/JPEG/BMP/GIF, a corrupt file, non-images."""
    rng = np.random.RandomState(0)
    for c, name in enumerate(['cat', 'dog', 'eel']):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(8):
            h, w = rng.randint(12, 70, 2)
            pixels = (rng.rand(h, w, 3) * 60).astype(np.uint8)
            pixels[..., c] = 250
            image = Image.fromarray(pixels)
            if i == 1:
                image = image.convert('L')
            fmt = ['png', 'jpg', 'bmp', 'gif'][i % 4]
            (image.convert('P') if fmt == 'gif' else image).save(folder / ('%d.%s' % (i, fmt)))
    (root / 'cat' / '.DS_Store').write_bytes(b'\0\0\0\1Bud1')
    (root / 'cat' / 'notes.txt').write_text('not an image')
    (root / 'dog' / 'Thumbs.db').write_bytes(b'\xd0\xcf\x11\xe0')
    (root / 'dog' / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 truncated')
    return root
