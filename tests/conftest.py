"""A tiny CIFAR-10 in the official layout that a small MobileNet learns in a few steps."""
import pickle

import numpy as np
import pytest

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
