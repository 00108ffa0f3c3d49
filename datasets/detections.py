"""A detection dataset by layout ('voc', 'coco', 'yolo'): its train, val and test Boxes splits
(from its own split files, or carved from the training images by --val_size/--test_size,
seeded, as a folder dataset's are), the class names, the COCO category id of each class, and
what was skipped reading it."""
import numpy as np

from datasets import coco_layout
from datasets import detection_layouts
from datasets import voc_layout
from datasets import yolo_layout
from preflight.errors import DataError


def load(layout, data_dir, val_size=0, test_size=0, seed=0):
    """{'train', 'val', 'test': Boxes, 'label_names', 'category_ids', 'image_ids' ({path: the
    COCO image id} of a COCO folder, else {}), 'problems' (detection_layouts.Problems)}. DataError for a folder that is not of the layout, or splits
    that leave no training image."""
    problems = detection_layouts.Problems()
    image_ids = {}
    if layout == 'voc':
        splits, names = voc_layout.read_voc(data_dir, problems)
        ids = list(range(1, len(names) + 1))
    elif layout == 'coco':
        splits, names, ids, image_ids = coco_layout.read_coco(data_dir, problems)
    elif layout == 'yolo':
        splits, names = yolo_layout.read_yolo(data_dir, problems)
        ids = list(range(1, len(names) + 1))
    else:
        raise DataError('--dataset %r is not a detection layout (%s)'
                        % (layout, ', '.join(detection_layouts.LAYOUTS)))
    if not names:
        raise DataError('--data_dir %s: no class has a box (%s)' % (
            data_dir, '; '.join(problems.lines()) or 'no annotation names one'))
    empty = detection_layouts.empty_split()
    train = splits.get('train', empty)
    val, test = splits.get('val', empty), splits.get('test', empty)
    for flag, size, split, name in (('val_size', val_size, val, 'val'),
                                    ('test_size', test_size, test, 'test')):
        if size and split.num_images:
            raise DataError('--%s %d: %s has its own %s split already; pass --%s 0'
                            % (flag, size, data_dir, name, flag))
    if val_size or test_size:
        if val_size + test_size >= train.num_images:
            raise DataError('--val_size %d and --test_size %d leave no training images of the '
                            '%d in %s' % (val_size, test_size, train.num_images, data_dir))
        order = np.random.RandomState(seed).permutation(train.num_images)
        parts = np.split(order, [val_size, val_size + test_size])
        carved_val, carved_test, train = (_take(train, np.sort(p)) for p in parts)
        val = carved_val if val_size else val
        test = carved_test if test_size else test
    if not train.num_images:
        raise DataError('--data_dir %s: no training image (%s)' % (
            data_dir, '; '.join(problems.lines()) or 'the train split is empty'))
    return dict(train=train, val=val, test=test, label_names=list(names), category_ids=ids,
                image_ids=image_ids, problems=problems)


def _take(split, indices):
    return detection_layouts.Boxes(*([part[i] for i in indices] for part in split))


def box_counts(split, num_classes):
    """Boxes of each class in a split, those ignored left out."""
    counts = np.zeros(num_classes, np.int64)
    for classes, ignored in zip(split.classes, split.ignored):
        np.add.at(counts, classes[~ignored], 1)
    return counts
