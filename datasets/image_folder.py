"""A folder of class subfolders as train, validation and test splits (Keras's and torchvision's layout).

    DIR/<class>/<image>                       carved with --val_size / --test_size
    DIR/train/<class>/, DIR/validation/ (or val/), DIR/test/   used as they are
"""
import os

import numpy as np

from datasets import sources
from preflight.errors import DataError


def class_names(root):
    """The sorted class subfolders of `root`; DataError unless there are at least two."""
    names = [n for n in sources.listdir(root) if not n.startswith('.')
             and os.path.isdir(os.path.join(root, n))]
    if not names:
        raise DataError('%s: no class subfolders; put each class\'s images in a folder of its own, '
                        'e.g. %s' % (root, os.path.join(root, 'cat', '0001.jpg')))
    if len(names) == 1:
        raise DataError('%s: only one class folder (%s); a classifier needs at least two'
                        % (root, names[0]))
    return names


def scan_folder(root, names, every_class=True):
    """Files of `root`/<name>/ for each of `names` (label = index); DataError for an empty or,
    with every_class, a missing class folder."""
    paths, labels = [], []
    for label, name in enumerate(names):
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            if every_class:
                raise DataError('%s: class folder missing' % folder)
            continue
        images = [f for f in sources.listdir(folder) if f.lower().endswith(sources.IMAGE_EXTENSIONS)
                  and not f.startswith('.') and os.path.isfile(os.path.join(folder, f))]
        if not images and every_class:
            raise DataError('%s: no images (JPEG, PNG, BMP or GIF) in this class folder'
                            % folder)
        paths += [os.path.join(folder, f) for f in images]
        labels += [label] * len(images)
    return sources.Files(paths, np.array(labels, np.int64))


def _split_folder(root, split):
    for name in sources.SPLIT_NAMES[split]:
        if os.path.isdir(os.path.join(root, name)):
            return os.path.join(root, name)
    return None


def load_folder(root, val_size=0, test_size=0, seed=0):
    """{'train', 'val', 'test': Files, 'label_names'} of a folder dataset; `val_size` and
    `test_size` images are held out (seeded) where DIR has no validation/ or test/ folder."""
    if not os.path.isdir(root):
        raise DataError('%s: no such folder (pass --data_dir, a folder of class subfolders)' % root)
    train_root = _split_folder(root, 'train')
    if train_root is None:
        names = class_names(root)
        every = scan_folder(root, names)
        train, val, test = _carve(every, val_size, test_size, seed, root)
    else:
        names = class_names(train_root)
        train = scan_folder(train_root, names)
        splits = {}
        for split in ('val', 'test'):
            folder = _split_folder(root, split)
            splits[split] = sources.Files([], np.zeros(0, np.int64))
            if folder is not None:
                _check_same_classes(folder, names)
                splits[split] = scan_folder(folder, names, every_class=False)
        val, test = splits['val'], splits['test']
        for flag, size, split in (('val_size', val_size, val), ('test_size', test_size, test)):
            if size and len(split.paths):
                raise DataError('--%s %d: %s has its own %s folder already; pass --%s 0'
                                % (flag, size, root, flag[:-5], flag))
        if val_size or test_size:
            train, carved_val, carved_test = _carve(train, val_size, test_size, seed, root)
            val = val if len(val.paths) else carved_val
            test = test if len(test.paths) else carved_test
    return dict(train=train, val=val, test=test, label_names=names)


def _check_same_classes(folder, names):
    extra = sorted(set(n for n in sources.listdir(folder) if os.path.isdir(os.path.join(folder, n))
                       and not n.startswith('.')) - set(names))
    if extra:
        raise DataError('%s: class folder(s) %s not in the training set' % (folder, ', '.join(extra)))


def _carve(files, val_size, test_size, seed, root):
    """(train, val, test) Files: val_size and test_size images held out, the same for a seed."""
    if val_size + test_size >= len(files.paths):
        raise DataError('%s: --val_size %d and --test_size %d leave no training images (there are '
                        '%d)' % (root, val_size, test_size, len(files.paths)))
    order = np.random.RandomState(seed).permutation(len(files.paths))
    parts = np.split(order, [val_size, val_size + test_size])
    val, test, train = (sources.Files([files.paths[i] for i in np.sort(p)], files.labels[np.sort(p)])
                        for p in parts)
    return train, val, test
