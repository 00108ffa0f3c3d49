"""A folder of class subfolders as train, validation and test splits (Keras's and torchvision's layout).

    DIR/<class>/<image>                       carved with --val_size / --test_size
    DIR/train/<class>/, DIR/validation/ (or val/), DIR/test/   used as they are

The folders are read once (_read), then split without touching the disk again.
"""
import hashlib
import os

import numpy as np

from datasets import sources
from preflight.errors import DataError


def load_folder(root, val_size=0, test_size=0, seed=0):
    """{'train', 'val', 'test': Files, 'label_names', 'nested': how many images are in subfolders
    of class folders, 'held_out': held_out_digest of the splits carved (None if none)} of a
    folder dataset; `val_size` and `test_size` images are held out (seeded) where DIR has no
    validation/ or test/ folder."""
    if not os.path.isdir(root):
        raise DataError('%s: %s; a folder of class subfolders is read' % (
            root, 'a file, not a folder' if os.path.exists(root) else 'no such folder'))
    folders = {split: _split_folder(root, split) for split in ('train', 'val', 'test')}
    split_folders = folders['train'] is not None
    if not split_folders:
        held = [folders[split] for split in ('val', 'test') if folders[split]]
        if held:  # else its class folders would be read as one more class
            raise DataError('%s: has %s but no train/ folder beside it; put the training class '
                            'folders in %s' % (root, ' and '.join(
                                os.path.basename(f) + '/' for f in held), os.path.join(root, 'train')))
        # No train/ folder: DIR's subfolders are the classes, whatever their names.
        folders = dict(train=root, val=None, test=None)
    listings = _read(folders)
    names = _class_names(folders['train'], listings['train'])
    splits = {}
    for split in ('train', 'val', 'test'):
        folder, listing = folders[split], listings[split]
        extra = sorted(set(listing) - set(names))  # the training folder's are the names
        if extra:
            raise DataError('%s: class folder(s) %s not in the training set'
                            % (folder, ', '.join(extra)))
        if split == 'train':
            for name in names:
                if not listing[name]:
                    raise DataError('%s: no images (JPEG, PNG, BMP or GIF) in this class folder'
                                    % os.path.join(folder, name))
        splits[split] = sources.Files(
            [path for name in names for path in listing.get(name, [])],
            np.array([label for label, name in enumerate(names)
                      for _ in listing.get(name, [])], np.int64))
    train, val, test = splits['train'], splits['val'], splits['test']
    carved = []  # the held-out splits taken from the training images
    if not split_folders:
        train, val, test = _carve(train, val_size, test_size, seed, root)
        carved = [val, test]
    else:
        for flag, size, split in (('val_size', val_size, val), ('test_size', test_size, test)):
            if size and split.num_images:
                raise DataError('--%s %d: %s has its own %s folder already; pass --%s 0'
                                % (flag, size, root, flag[:-5], flag))
        if val_size or test_size:
            train, carved_val, carved_test = _carve(train, val_size, test_size, seed, root)
            val = val if val.num_images else carved_val
            test = test if test.num_images else carved_test
            carved = [split for split, size in ((carved_val, val_size), (carved_test, test_size))
                      if size]
    nested = sum(os.path.dirname(path) != os.path.join(folders[split], name)
                 for split in folders if folders[split] for name, paths in listings[split].items()
                 for path in paths)
    return dict(train=train, val=val, test=test, label_names=names, nested=nested,
                held_out=held_out_digest(root, *carved) if val_size or test_size else None)


def held_out_digest(root, *splits):
    """A digest of the images of `splits` (Files) by their paths under `root`: the same only
    for the same images, wherever the folder has moved. Images added to or removed from a
    folder carve other held-out splits, with images trained on among them."""
    digest = hashlib.sha1()
    for split in splits:
        for path in split.paths:
            digest.update(os.fsencode(os.path.relpath(path, root)) + b'\0')
        digest.update(b'\1')
    return digest.hexdigest()[:16]


def _split_folder(root, split):
    for name in sources.SPLIT_NAMES[split]:
        if os.path.isdir(os.path.join(root, name)):
            return os.path.join(root, name)
    return None


def _read(folders):
    """{split: {class subfolder: [its image files, sorted, then those of its subfolders]}} of
    each split's folder (None: {})."""
    listings = {}
    for split, folder in folders.items():
        listings[split] = {}
        if folder is None:
            continue
        seen = {}  # real path of each class folder: a link must not give images two labels
        for name in sources.listdir(folder):
            path = os.path.join(folder, name)
            if name.startswith('.') or not os.path.isdir(path):
                continue
            real, home = os.path.realpath(path), os.path.realpath(folder)
            if real == home or home.startswith(os.path.join(real, '')):
                raise DataError('%s: links to %s, a folder that holds it: its images would be '
                                'read again as a class of their own; remove the link'
                                % (path, real))
            if real in seen:
                raise DataError('%s and %s are the same folder (a link): its images would have '
                                'two labels; remove one' % (seen[real], path))
            seen[real] = path
            images = []
            # As Keras's and torchvision's loaders: images in subfolders of a class are its own.
            # A link to nothing (or to itself) is kept: its read fails, and it is skipped and named.
            for inner, subfolders, names in os.walk(path, onerror=_unreadable):
                subfolders[:] = sorted(d for d in subfolders if not d.startswith('.'))
                images += [os.path.join(inner, f) for f in sorted(names)
                           if f.lower().endswith(sources.IMAGE_EXTENSIONS) and not f.startswith('.')
                           and (os.path.isfile(os.path.join(inner, f))
                                or os.path.islink(os.path.join(inner, f)))]
            listings[split][name] = images
    return listings


def _unreadable(error):
    raise DataError('%s: cannot read this folder (%s)' % (error.filename, error.strerror or error))


def _class_names(root, listing):
    """The sorted class subfolders of the training folder; DataError unless there are two."""
    names = sorted(listing)
    if not names:
        raise DataError('%s: no class subfolders; put each class\'s images in a folder of its own, '
                        'e.g. %s' % (root, os.path.join(root, 'cat', '0001.jpg')))
    if len(names) == 1:
        raise DataError('%s: only one class folder (%s); a classifier needs at least two'
                        % (root, names[0]))
    for name in names:
        # Class names go into labels.txt and config.json, a line of UTF-8 text each.
        try:
            name.encode('utf-8')
        except UnicodeEncodeError:
            raise DataError('%s: class folder %s: its name is not UTF-8 text; rename it'
                            % (root, ascii(name))) from None
        if not name.isprintable():
            raise DataError('%s: class folder %s: its name holds a line break or another control '
                            'character; rename it' % (root, ascii(name)))
    return names


def _carve(files, val_size, test_size, seed, root):
    """(train, val, test) Files: val_size and test_size images held out, the same for a seed."""
    if val_size + test_size >= files.num_images:
        raise DataError('%s: --val_size %d and --test_size %d leave no training images (there are '
                        '%d)' % (root, val_size, test_size, files.num_images))
    order = np.random.RandomState(seed).permutation(files.num_images)
    parts = np.split(order, [val_size, val_size + test_size])
    val, test, train = (sources.Files([files.paths[i] for i in np.sort(p)], files.labels[np.sort(p)])
                        for p in parts)
    return train, val, test
