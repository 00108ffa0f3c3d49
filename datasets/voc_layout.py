"""Pascal VOC folders (VOCdevkit: JPEGImages/, Annotations/*.xml, ImageSets/Main/{train,val,
test}.txt) read into detection_layouts.Boxes splits."""
import os
import xml.etree.ElementTree as ElementTree

from datasets import detection_layouts as layouts
from datasets import sources
from preflight.errors import DataError


def read_voc(data_dir, problems, class_names=None):
    """({split: Boxes}, class names) of a VOCdevkit-style folder (data_dir may be VOC2007/ or a
    folder with one such year folder). Splits from ImageSets/Main/{train,val,test}.txt; without
    them every annotated image is 'train'. Class names: `class_names`, else the names found,
    sorted."""
    root = _voc_root(data_dir)
    annotations = os.path.join(root, 'Annotations')
    listed = {}
    main = os.path.join(root, 'ImageSets', 'Main')
    for split, names in (('train', ('train.txt',)), ('val', ('val.txt',)),
                         ('test', ('test.txt',))):
        for name in names:
            path = os.path.join(main, name)
            if os.path.isfile(path):
                try:
                    with open(path, encoding='utf-8-sig') as f:  # -sig: a BOM is no stem's
                        listed[split] = [line.split()[0] for line in f if line.strip()]
                except UnicodeDecodeError as e:
                    raise DataError('%s is not UTF-8 text (byte %d: %s); save it as UTF-8'
                                    % (path, e.start, e.reason)) from None
    if not listed:
        listed['train'] = [name[:-4] for name in sources.listdir(annotations)
                           if name.endswith('.xml')]
    if not any(listed.values()):
        raise DataError('%s: no annotation (Annotations/*.xml) and no image list '
                        '(ImageSets/Main/train.txt)' % root)
    parsed = {split: [_parse_voc(root, stem, problems) for stem in stems]
              for split, stems in listed.items()}
    names = class_names or sorted({obj[0] for images in parsed.values() for image in images
                                   if image for obj in image[2]})
    index = {name: i for i, name in enumerate(names)}
    splits = {}
    for split, images in parsed.items():
        builder = layouts.Builder()
        for image in images:
            if image is None:
                continue
            path, size, objects = image
            boxes, classes, ignored = [], [], []
            for label, box, difficult in objects:
                if label not in index:
                    problems.add('boxes of an unknown class', os.path.basename(path))
                    continue
                box = layouts.check_box(box, size, os.path.basename(path), problems)
                if box is None:
                    continue
                if difficult:
                    problems.add("'difficult' boxes (left out of training, ignored in scoring)",
                                 os.path.basename(path))
                boxes.append(box)
                classes.append(index[label])
                ignored.append(difficult)
            builder.add(path, size, boxes, classes, ignored)
        splits[split] = builder.split()
    return splits, names


def _voc_root(data_dir):
    if os.path.isdir(os.path.join(data_dir, 'Annotations')):
        return data_dir
    years = [os.path.join(data_dir, name) for name in sources.listdir(data_dir)
             if os.path.isdir(os.path.join(data_dir, name, 'Annotations'))]
    if len(years) == 1:
        return years[0]
    raise DataError('--data_dir %s: not a VOC folder (one with Annotations/ and JPEGImages/%s)'
                    % (data_dir, ', or one such folder as VOC2007/' if not years else
                       '; it holds %d: pass one of them' % len(years)))


def _parse_voc(root, stem, problems):
    """(image path, (height, width), [(class, box, difficult)]) of Annotations/STEM.xml, or
    None (recorded) when the annotation or the image is missing or unreadable."""
    xml_path = os.path.join(root, 'Annotations', stem + '.xml')
    try:
        tree = ElementTree.parse(xml_path).getroot()
    except (OSError, ElementTree.ParseError):
        problems.add('images whose annotation is missing or unreadable', stem + '.xml')
        return None
    filename = _text(tree, 'filename') or stem + '.jpg'
    path = os.path.join(root, 'JPEGImages', filename)
    if not os.path.isfile(path):
        candidates = [os.path.join(root, 'JPEGImages', stem + ext)
                      for ext in ('.jpg', '.jpeg', '.png', '.JPG', '.PNG')]
        path = next((c for c in candidates if os.path.isfile(c)), None)
        if path is None:
            problems.add('annotations whose image is missing', stem + '.xml')
            return None
    try:
        size = tree.find('size')
        height, width = int(float(_text(size, 'height'))), int(float(_text(size, 'width')))
    except (AttributeError, TypeError, ValueError):
        height = width = 0
    if not height or not width:
        try:
            height, width = layouts.image_size(path)
        except OSError:
            problems.add('images that cannot be read', os.path.basename(path))
            return None
    objects = []
    for obj in tree.findall('object'):
        label = _text(obj, 'name', '')
        if not label:
            problems.add('boxes without a class name', os.path.basename(xml_path))
            continue
        bndbox = obj.find('bndbox')
        try:
            xmin, ymin, xmax, ymax = (float(_text(bndbox, key)) for key in
                                      ('xmin', 'ymin', 'xmax', 'ymax'))
        except (AttributeError, TypeError, ValueError):
            problems.add('boxes without four numbers', os.path.basename(xml_path))
            continue
        difficult = _text(obj, 'difficult', '0').lower() in ('1', 'true')
        objects.append((label, [xmin - 1, ymin - 1, xmax, ymax], difficult))
    return path, (height, width), objects


def _text(element, tag, default=None):
    found = element.find(tag)
    return found.text.strip() if found is not None and found.text else default
