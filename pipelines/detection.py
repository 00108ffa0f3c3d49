"""The input pipeline of a detection split (datasets/detection_layouts.py's Boxes): photos with
their boxes, augmented without losing a box, letterboxed to the input size.

Letterbox: the photo scaled whole to fit --image_size, centred on grey (128), its aspect kept,
as YOLOv3's. Training, each photo in turn (numpy and Pillow, keyed as every augmentation
here by (seed, epoch, place in the batch): a resumed run redraws the same batches):
  crop that keeps objects  half the time, a random crop of the photo that still holds every box
                           whole (zoom in; SSD's crop, without cutting objects);
  scale jitter             the letterboxed photo shrunk to 50-100% with its aspect changed by
                           up to 25%, placed at random on the grey square (zoom out);
  flip                     left-right, half the time;
  colour                   brightness, contrast and saturation, each x0.7-1.3.
With --multi_scale MIN,MAX each batch is drawn at one size of that range (multiples of 32),
keyed by its place in the run.

A photo that does not decode, or whose size is not its annotation's, is named in
datasets/decoding.py's skipped_images() and left out of scoring; in training its place in the
batch is a black image without boxes (the steps stay exact). 'difficult' and 'iscrowd' boxes
go through the augmentation as ignore regions (detection/loss.py).
"""
import os

import numpy as np
import tensorflow as tf
from PIL import Image

from datasets import decoding
from datasets import image_files
from detection import loss
from pipelines import order
from preflight import errors

v1 = tf.compat.v1

GREY = 128

# Boxes smaller than this (pixels, either side) after augmentation are dropped: nothing to learn.
MIN_BOX = 2.0


def letterbox_geometry(height, width, size):
    """(scale, new height, new width, top, left) of a photo letterboxed into size x size."""
    scale = min(size / height, size / width)
    new_h, new_w = max(int(round(height * scale)), 1), max(int(round(width * scale)), 1)
    return scale, new_h, new_w, (size - new_h) // 2, (size - new_w) // 2


def to_photo(boxes, height, width, size):
    """Boxes [n, 4] in the letterboxed input's pixels mapped back to the photo's, clipped."""
    _, new_h, new_w, top, left = letterbox_geometry(height, width, size)
    # Each axis by its own ratio: the photo was resized to new_w x new_h, rounded, so the
    # shorter side's ratio is not quite `scale` (off by up to half an input pixel).
    ratio = [new_w / width, new_h / height] * 2
    boxes = (np.asarray(boxes, np.float64).reshape(-1, 4) - [left, top, left, top]) / ratio
    return np.clip(boxes, 0, [width, height, width, height])


def _place(pixels, new_h, new_w, top, left, size):
    canvas = np.full((size, size, 3), GREY, np.uint8)
    resized = np.asarray(Image.fromarray(pixels).resize((new_w, new_h), Image.BILINEAR))
    canvas[top:top + new_h, left:left + new_w] = resized
    return canvas


def letterbox(pixels, size):
    """(uint8 [size, size, 3], (scale, top, left)) of a photo: boxes map as x * scale + left."""
    scale, new_h, new_w, top, left = letterbox_geometry(pixels.shape[0], pixels.shape[1], size)
    return _place(pixels, new_h, new_w, top, left, size), (scale, top, left)


def augment(pixels, boxes, size, random):
    """(uint8 [size, size, 3], boxes [n, 4]) of a photo and its boxes, augmented as the module
    says; boxes still inside the picture, the ones under MIN_BOX pixels dropped."""
    height, width = pixels.shape[:2]
    boxes = boxes.astype(np.float64)
    if random.rand() < 0.5:
        hull = (np.concatenate([boxes[:, :2].min(0), boxes[:, 2:].max(0)]) if len(boxes)
                else np.array([width / 2, height / 2, width / 2, height / 2]))
        x0 = int(random.uniform(0, max(np.floor(hull[0]), 0)))
        y0 = int(random.uniform(0, max(np.floor(hull[1]), 0)))
        x1 = int(np.ceil(random.uniform(min(np.ceil(hull[2]), width), width)))
        y1 = int(np.ceil(random.uniform(min(np.ceil(hull[3]), height), height)))
        if x1 - x0 >= 8 and y1 - y0 >= 8:
            pixels = pixels[y0:y1, x0:x1]
            boxes = boxes - [x0, y0, x0, y0]
            height, width = pixels.shape[:2]
    fit = min(size / height, size / width) * random.uniform(0.5, 1.0)
    stretch = random.uniform(0.75, 1.25)
    new_w = int(np.clip(round(width * fit * np.sqrt(stretch)), 1, size))
    new_h = int(np.clip(round(height * fit / np.sqrt(stretch)), 1, size))
    left, top = random.randint(0, size - new_w + 1), random.randint(0, size - new_h + 1)
    canvas = _place(pixels, new_h, new_w, top, left, size)
    scale = np.array([new_w / width, new_h / height] * 2)
    boxes = boxes * scale + [left, top, left, top]
    if random.rand() < 0.5:
        canvas = canvas[:, ::-1]
        boxes = np.stack([size - boxes[:, 2], boxes[:, 1], size - boxes[:, 0], boxes[:, 3]], 1) \
            if len(boxes) else boxes
    image = canvas.astype(np.float32)
    brightness, contrast, saturation = random.uniform(0.7, 1.3, 3)
    grey = image.mean(2, keepdims=True)
    image = grey + (image - grey) * saturation
    image = (image - image.mean()) * contrast + image.mean() * brightness
    image = np.clip(image, 0, 255).astype(np.uint8)
    boxes = np.clip(boxes, 0, size).reshape(-1, 4)
    return image, boxes


def _load(split, index, name_of):
    """uint8 pixels of image `index`, or None (named in skipped_images()) if it does not decode
    or its size is not its annotation's."""
    name = name_of(index)
    if decoding.known_bad(name):
        return None
    try:
        pixels = image_files.read_rgb(split.paths[index])
    except errors.ImageError as e:
        decoding.record_skipped(name, str(e))
        return None
    if tuple(pixels.shape[:2]) != tuple(split.sizes[index]):
        decoding.record_skipped(name, 'decoded as %dx%d, annotated as %dx%d (width x height): '
                                'its boxes would be wrong' % (pixels.shape[1], pixels.shape[0],
                                                             split.sizes[index][1],
                                                             split.sizes[index][0]))
        return None
    decoding.record_decoded()
    return pixels


def _name_of(split):
    # By path: a.jpg of train/ and a.jpg of val/ are two photos.
    return lambda index: split.paths[index]


def training_example(split, max_boxes, index, key, size):
    """(float32 image [size, size, 3], float32 [max_boxes, 5] of x1, y1, x2, y2, class (-1:
    none; loss.IGNORE_REGION: a 'difficult' or 'iscrowd' box), ok) of image `index`,
    augmented by `key` (ints)."""
    pixels = _load(split, index, _name_of(split))
    labels = np.full((max_boxes, 5), -1, np.float32)
    if pixels is None:
        return np.zeros((size, size, 3), np.float32), labels, False
    random = np.random.RandomState(np.asarray(key, np.int64) % (2 ** 32))
    image, boxes = augment(pixels, split.boxes[index], size, random)
    classes = np.where(split.ignored[index], loss.IGNORE_REGION, split.classes[index])
    big = ((boxes[:, 2] - boxes[:, 0]) >= MIN_BOX) & ((boxes[:, 3] - boxes[:, 1]) >= MIN_BOX)
    boxes, classes = boxes[big], classes[big]
    # Past --max_boxes the largest are kept (as its help says), not the first annotated.
    largest = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]),
                         kind='stable')[:max_boxes]
    boxes, classes = boxes[largest], classes[largest]
    labels[:len(boxes), :4] = boxes
    labels[:len(boxes), 4] = classes
    return image.astype(np.float32), labels, True


def evaluation_example(split, index, size):
    """(float32 letterboxed image [size, size, 3], ok) of image `index`."""
    pixels = _load(split, index, _name_of(split))
    if pixels is None:
        return np.zeros((size, size, 3), np.float32), False
    return letterbox(pixels, size)[0].astype(np.float32), True


def scale_sizes(multi_scale, image_size):
    """The input sizes training draws from: --multi_scale 'MIN,MAX' (multiples of 32), or
    --image_size alone."""
    if not multi_scale:
        return [image_size]
    low, high = (int(v) for v in multi_scale.split(','))
    return list(range(low, high + 1, 32))


def input_pipeline(split, batch_size, training, image_size, max_boxes, seed=0, sizes=None,
                   worker=(0, 1)):
    """(images float32 [B, S, S, 3], labels, initializer, feed) of a Boxes split. Training:
    labels float32 [B, max_boxes, 5] (x1, y1, x2, y2 in input pixels, class; -1 rows: none);
    `sizes` the input sizes drawn from. Evaluation: labels int32 [B], each image's index in the
    split (letterboxed to image_size; images that do not decode left out)."""
    parallel = max(2, os.cpu_count() or 2)
    first, share = order.share(batch_size, worker[1], worker[0]) if training else (0, batch_size)
    indices_ph = v1.placeholder(tf.int64, [None], 'indices')
    feed_values = {indices_ph: np.arange(split.num_images, dtype=np.int64)}
    with tf.name_scope('train_input' if training else 'eval_input'):
        dataset = tf.data.Dataset.from_tensor_slices(indices_ph)
        if training:
            epochs = order.EpochOrder(seed)
            sizes_t = tf.constant(sizes or [image_size], tf.int32)
            dataset = dataset.shuffle(split.num_images, seed=epochs.seed,
                                      reshuffle_each_iteration=True)
            dataset = dataset.repeat().batch(batch_size, drop_remainder=True).enumerate()
            dataset = dataset.skip(epochs.skip_batches)

            def spread(batch_index, indices):
                draw = tf.random.stateless_uniform([], tf.stack([epochs.seed, batch_index]),
                                                   0, len(sizes or [image_size]), tf.int32)
                keys = tf.stack([tf.fill([share], epochs.seed), batch_index * batch_size + first
                                 + tf.range(share, dtype=tf.int64)], 1)
                return tf.data.Dataset.from_tensor_slices((
                    indices[first:first + share], keys, tf.fill([share], sizes_t[draw])))

            def load(index, key, size):
                image, labels, ok = tf.numpy_function(
                    lambda i, k, s: training_example(split, max_boxes, int(i), k, int(s)),
                    [index, key, size], [tf.float32, tf.float32, tf.bool])
                return image, labels, ok

            dataset = dataset.flat_map(spread).map(load, num_parallel_calls=parallel,
                                                   deterministic=True)
            # An image that did not decode trains as background: its place is kept, its boxes
            # are none (the loop's step count stays exact).
            iterator = order.initializable_iterator(dataset.map(
                lambda image, labels, ok: (image, labels)).batch(share, drop_remainder=True)
                .prefetch(2))
            images, labels = iterator.get_next()
            images.set_shape([share, None, None, 3])
            labels.set_shape([share, max_boxes, 5])
            return images, labels, iterator.initializer, order.feeder(feed_values, epochs)

        def load_eval(index):
            image, ok = tf.numpy_function(
                lambda i: evaluation_example(split, int(i), image_size), [index],
                [tf.float32, tf.bool])
            return image, tf.cast(index, tf.int32), ok

        dataset = dataset.map(load_eval, num_parallel_calls=parallel, deterministic=True)
        dataset = dataset.filter(lambda image, index, ok: ok).map(
            lambda image, index, ok: (image, index))
        iterator = order.initializable_iterator(dataset.batch(batch_size).prefetch(2))
        images, indices = iterator.get_next()
        images.set_shape([None, image_size, image_size, 3])
        return images, indices, iterator.initializer, order.feeder(feed_values)
