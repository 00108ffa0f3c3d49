"""Tiny detection datasets for the tests: photos of grey noise with bright squares (class
'square', red) and wide bars (class 'bar', blue) at known places, written in the VOC, COCO and
YOLO layouts."""
import json
import os

import numpy as np
from PIL import Image

NAMES = ['bar', 'square']


def photo(seed, size=(64, 96)):
    """(uint8 pixels [H, W, 3], boxes [[x1, y1, x2, y2]], class indices) of one photo."""
    random = np.random.RandomState(seed)
    height, width = size
    pixels = random.randint(60, 120, (height, width, 3)).astype(np.uint8)
    boxes, classes = [], []
    for _ in range(1 + seed % 2):
        label = int(random.randint(2))
        w, h = (int(random.randint(14, 24)),) * 2 if label == 1 else (
            int(random.randint(28, 40)), int(random.randint(8, 12)))
        x, y = int(random.randint(0, width - w)), int(random.randint(0, height - h))
        if any(x < b[2] and b[0] < x + w and y < b[3] and b[1] < y + h for b in boxes):
            continue
        pixels[y:y + h, x:x + w] = (230, 40, 40) if label == 1 else (40, 40, 230)
        boxes.append([x, y, x + w, y + h])
        classes.append(label)
    return pixels, boxes, classes


def write_voc(root, count=12, splits=(('train', 0.75), ('test', 0.25)), extra_objects=None):
    """A VOC folder of `count` photos; `extra_objects` {stem: [(name, xmin, ymin, xmax, ymax,
    difficult)]} adds objects as written (bad ones too). Returns {stem: (boxes, classes)}."""
    for folder in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    truth, stems = {}, []
    for i in range(count):
        pixels, boxes, classes = photo(i)
        stem = 'photo_%02d' % i
        stems.append(stem)
        Image.fromarray(pixels).save(os.path.join(root, 'JPEGImages', stem + '.png'))
        objects = [(NAMES[c], b[0] + 1, b[1] + 1, b[2], b[3], 0) for b, c in zip(boxes, classes)]
        objects += (extra_objects or {}).get(stem, [])
        xml = ['<annotation><filename>%s.png</filename><size><width>%d</width><height>%d'
               '</height><depth>3</depth></size>' % (stem, pixels.shape[1], pixels.shape[0])]
        for name, x1, y1, x2, y2, difficult in objects:
            xml.append('<object><name>%s</name><difficult>%d</difficult><bndbox><xmin>%s</xmin>'
                       '<ymin>%s</ymin><xmax>%s</xmax><ymax>%s</ymax></bndbox></object>'
                       % (name, difficult, x1, y1, x2, y2))
        xml.append('</annotation>')
        with open(os.path.join(root, 'Annotations', stem + '.xml'), 'w') as f:
            f.write(''.join(xml))
        truth[stem] = (boxes, classes)
    start = 0
    for split, share in splits:
        take = int(round(share * count))
        with open(os.path.join(root, 'ImageSets', 'Main', split + '.txt'), 'w') as f:
            f.writelines(stem + '\n' for stem in stems[start:start + take])
        start += take
    return truth


def write_coco(root, count=8):
    """A COCO folder: annotations/instances_train.json and instances_val.json, images in
    train/ and val/; category ids 3 (bar) and 7 (square)."""
    os.makedirs(os.path.join(root, 'annotations'), exist_ok=True)
    ids = {0: 3, 1: 7}
    truth = {}
    for split, indices in (('train', range(0, count - 2)), ('val', range(count - 2, count))):
        os.makedirs(os.path.join(root, split), exist_ok=True)
        content = dict(images=[], annotations=[], categories=[
            dict(id=7, name='square'), dict(id=3, name='bar')])
        for i in indices:
            pixels, boxes, classes = photo(i)
            name = 'p%d.png' % i
            Image.fromarray(pixels).save(os.path.join(root, split, name))
            content['images'].append(dict(id=100 + i, file_name=name, width=pixels.shape[1],
                                          height=pixels.shape[0]))
            for box, label in zip(boxes, classes):
                content['annotations'].append(dict(
                    id=len(content['annotations']) + 1, image_id=100 + i, category_id=ids[label],
                    bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]], iscrowd=0))
            truth[name] = (boxes, classes)
        with open(os.path.join(root, 'annotations', 'instances_%s.json' % split), 'w') as f:
            json.dump(content, f)
    return truth


def write_yolo(root, count=6):
    """A flat YOLO folder: images/, labels/ (normalised cx cy w h), classes.txt."""
    os.makedirs(os.path.join(root, 'images'), exist_ok=True)
    os.makedirs(os.path.join(root, 'labels'), exist_ok=True)
    with open(os.path.join(root, 'classes.txt'), 'w') as f:
        f.write('\n'.join(NAMES) + '\n')
    truth = {}
    for i in range(count):
        pixels, boxes, classes = photo(i)
        height, width = pixels.shape[:2]
        name = 'p%d.png' % i
        Image.fromarray(pixels).save(os.path.join(root, 'images', name))
        with open(os.path.join(root, 'labels', 'p%d.txt' % i), 'w') as f:
            for (x1, y1, x2, y2), label in zip(boxes, classes):
                f.write('%d %.6f %.6f %.6f %.6f\n' % (label, (x1 + x2) / 2 / width,
                                                      (y1 + y2) / 2 / height, (x2 - x1) / width,
                                                      (y2 - y1) / height))
        truth[name] = (boxes, classes)
    return truth
