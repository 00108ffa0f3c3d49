"""The graph-mode tf.data pipeline of a streamed split (datasets/sources.py's Files or Records),
with TF-Slim's inception preprocessing, for --image_size other than 32 on folder and TFRecord
datasets.

Training: a random crop of 8% to 100% of the image's area with aspect ratio 3/4 to 4/3
(tf.image.stateless_sample_distorted_bounding_box, as slim's distorted_bounding_box_crop), resized
to --image_size, and a random horizontal flip. Evaluation: the central 87.5%, resized. Both give
raw 0..255 float pixels, as the CIFAR-10 pipeline does: normalisation is the model's.

As in_memory.py's, the order and the augmentation are drawn from (seed, epoch) (order.py):
a resumed run continues its epoch. An image that does not decode is left out of its batch (the
next one fills its place) and named in datasets/decoding.py's skipped_images().

Several workers: TFRecords are sharded by file (worker_shards), so that each worker reads
only its own shards' bytes; image files, and TFRecords of fewer shards than workers, are
sharded by index (every worker draws the same global batch and keeps its slice of it).
"""
import os

import numpy as np
import tensorflow as tf

from datasets import decoding
from datasets import sources
from datasets import tfrecords
from pipelines import order
from preflight import errors

v1 = tf.compat.v1


_CENTRAL_FRACTION = 0.875      # slim's preprocess_for_eval

_AREA_RANGE = (0.08, 1.0)      # slim's preprocess_for_train

_ASPECT_RATIO_RANGE = (3. / 4., 4. / 3.)

_SHUFFLE_BUFFER = 10000        # records in TFRecord shuffling (files are shuffled whole first)


def _parallel_calls():
    return max(2, os.cpu_count() or 2)


def train_crop(image, size, key):
    """slim's inception training crop of a uint8 [H, W, 3] image, resized, flipped at random."""
    crop_key, flip_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    begin, extent, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=crop_key,
        min_object_covered=0.1, aspect_ratio_range=_ASPECT_RATIO_RANGE, area_range=_AREA_RANGE,
        max_attempts=100, use_image_if_no_bounding_boxes=True)
    crop = tf.slice(image, begin, extent)
    resized = tf.image.resize(tf.cast(crop, tf.float32), [size, size])
    flip = tf.random.stateless_uniform([], flip_key) < 0.5
    return tf.cond(flip, lambda: tf.image.flip_left_right(resized), lambda: resized)


def central_fraction(dataset, image_size):
    """The share of an image's sides that evaluation keeps: slim's 87.5% where own images are
    streamed (sizes other than 32), all of it where splits are held in memory at 32x32."""
    streamed = dataset != 'cifar10' and image_size != sources.CACHED_SIZE
    return _CENTRAL_FRACTION if streamed else 1.0


def eval_view(image, size, fraction=_CENTRAL_FRACTION):
    """What evaluation scores of one uint8 [H, W, 3] image, float32 [size, size, 3] 0..255.
    A fraction below 1 is slim's inception evaluation view: that central share, resized. At 1
    the image is resized whole to 32x32, as the in-memory splits hold it, then to `size` as
    their pipeline resizes it."""
    if fraction < 1:
        central = tf.image.central_crop(tf.cast(image, tf.float32), fraction)
        return tf.image.resize(central, [size, size])
    image = tf.cast(decoding.resize_to_cache(image), tf.float32)
    return image if size == sources.CACHED_SIZE else tf.image.resize(image, [size, size])


def eval_views(elements, is_path, num_classes, size, fraction):
    """(image float32 [size, size, 3], label) of each of `elements` (decoding.elements' (source,
    name, label), in their order) that decodes, seen by eval_view; the others are skipped and
    named in decoding.skipped_images()."""
    def view(source, name, label):
        image, ok = decoding.decode(source, name, label, num_classes, is_path)
        return eval_view(image, size, fraction), label, ok

    views = elements.map(view, num_parallel_calls=_parallel_calls(), deterministic=True)
    return views.filter(_decoded).map(_without_ok)


def _decoded(image, label, ok):
    return ok


def _without_ok(image, label, ok):
    return image, label


def sample_views(split, num_classes, count, size, fraction, seed=0):
    """float32 [count, size, size, 3]: images of a Files or Records split drawn at random
    (seeded) and seen by eval_view, as int8 calibration wants them; an image that does not
    decode gives way to the next. Only about `count` images are read, however large the split."""
    if isinstance(split, sources.Records):
        shards = tf.data.Dataset.from_tensor_slices(split.shards).shuffle(len(split.shards), seed)
        dataset = shards.interleave(tfrecords.shard_records, cycle_length=min(4, len(split.shards)))
        dataset = dataset.shuffle(min(_SHUFFLE_BUFFER, 4 * count), seed).map(tfrecords.parse_record)
    else:
        order = np.random.RandomState(seed).permutation(len(split.paths))
        dataset = tf.data.Dataset.from_tensor_slices((decoding.tf_paths(split.paths)[order],
                                                      np.asarray(split.labels)[order]))
        dataset = dataset.map(lambda path, label: (path, path, label))
    views = eval_views(dataset, isinstance(split, sources.Files), num_classes, size, fraction)
    images = [image for image, _ in views.take(count).as_numpy_iterator()]
    if len(images) < count:
        raise errors.DataError('%d images asked for, only %d of the split decode'
                                 % (count, len(images)))
    return np.stack(images)


def worker_shards(split, workers):
    """[Records of each worker] of a Records split: every workers-th shard from the worker's
    index on, as tf.data's FILE auto-sharding deals them; None for one worker, or fewer shards
    than workers (each then reads every shard and keeps its slice of each batch)."""
    if workers == 1 or len(split.shards) < workers:
        return None
    return [sources.Records(split.shards[i::workers], split.counts[i::workers])
            for i in range(workers)]


def input_pipeline(split, num_classes, batch_size, training, image_size, seed=0, augment=True,
                   worker=(0, 1)):
    """(images_batch float32 [B, S, S, 3], labels_batch int32 [B], initializer, feed) over a
    Files or Records split; as in_memory.input_pipeline, whose feed and `worker` slices it
    shares (sliced before decoding: a worker reads only its own images). In training, a worker
    of TFRecords with enough shards reads its worker_shards alone, and batches of its share."""
    first, share = order.share(batch_size, worker[1], worker[0]) if training else (0, batch_size)
    shards = training and isinstance(split, sources.Records) and worker_shards(split, worker[1])
    if shards:
        split = shards[worker[0]]
    # Batches drawn from the order: the global one (then sliced), or this worker's share.
    drawn, taken = (share, slice(0, share)) if shards else (batch_size, slice(first, first + share))
    with tf.name_scope('train_input' if training else 'eval_input'):
        epochs = order.EpochOrder(seed) if training else None
        if isinstance(split, sources.Records):
            dataset, feed_values = _records(split, epochs)
        else:
            dataset, feed_values = _files(split, epochs)

        def load(source, name, label, key=None):
            # Files are read here, after the batches a resumed epoch skips.
            image, ok = decoding.decode(source, name, label, num_classes,
                                        is_path=isinstance(split, sources.Files))
            view = train_crop(image, image_size, key) if key is not None and augment else \
                eval_view(image, image_size)
            return view, tf.cast(label, tf.int32), ok

        if training:
            # Batches are drawn (and skipped) before decoding: a resumed epoch decodes only
            # what is left of it. Each image's augmentation is keyed by (epoch, batch, place).
            # The keys are the images' places in the global batch, whichever worker draws them.
            dataset = dataset.repeat().batch(drawn, drop_remainder=True).enumerate()
            dataset = dataset.skip(epochs.skip_batches).flat_map(
                lambda index, batch: tf.data.Dataset.from_tensor_slices(tuple(
                    part[taken] for part in batch) + (tf.stack(
                        [tf.fill([share], epochs.seed),
                         index * batch_size + first + tf.range(share, dtype=tf.int64)], axis=1),)))
            dataset = dataset.map(lambda c, n, l, key: load(c, n, l, key),
                                  num_parallel_calls=_parallel_calls(), deterministic=True)
            dataset = dataset.map(lambda image, label, ok: (image, tf.where(ok, label, -1)))
        else:
            dataset = dataset.map(load, num_parallel_calls=_parallel_calls(), deterministic=True)
            dataset = dataset.filter(_decoded).map(_without_ok)
        iterator = order.initializable_iterator(
            dataset.batch(share, drop_remainder=training).prefetch(2))
        images_batch, labels_batch = iterator.get_next()
        images_batch.set_shape([None, image_size, image_size, 3])
    return images_batch, labels_batch, iterator.initializer, order.feeder(feed_values, epochs)


def _files(split, epochs):
    # Fed through placeholders: a million paths as graph constants would bloat every meta graph.
    paths_ph = v1.placeholder(tf.string, [None], 'paths')
    labels_ph = v1.placeholder(tf.int64, [None], 'labels')
    dataset = tf.data.Dataset.from_tensor_slices((paths_ph, labels_ph))
    if epochs:
        dataset = dataset.shuffle(len(split.paths), seed=epochs.seed, reshuffle_each_iteration=True)
    return dataset.map(lambda path, label: (path, path, label)), {
        paths_ph: decoding.tf_paths(split.paths), labels_ph: split.labels}


def _records(split, epochs):
    shards_ph = v1.placeholder(tf.string, [None], 'shards')
    shards = tf.data.Dataset.from_tensor_slices(shards_ph)
    if epochs:
        shards = shards.shuffle(len(split.shards), seed=epochs.seed, reshuffle_each_iteration=True)
    # File-level interleave: a few shards read at once, a dataset larger than memory streams.
    dataset = shards.interleave(tfrecords.shard_records, cycle_length=min(4, len(split.shards)))
    if epochs:
        dataset = dataset.shuffle(_SHUFFLE_BUFFER, seed=epochs.seed, reshuffle_each_iteration=True)
    dataset = dataset.map(tfrecords.parse_record)
    return dataset, {shards_ph: split.shards}
