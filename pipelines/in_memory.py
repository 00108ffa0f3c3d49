"""The graph-mode tf.data pipeline over arrays held in memory: CIFAR-10, and own images at 32x32."""
import tensorflow as tf

import data_utils
from pipelines import order


def input_pipeline(images, labels, batch_size, training, augment=True, image_size=32, seed=0,
                   cutout=0, worker=(0, 1)):
    """A graph-mode tf.data pipeline over uint8 NHWC images and integer labels.

    Returns (images_batch, labels_batch, initializer, feed): images_batch is
    float32 [B, image_size, image_size, 3] in raw 0..255 units (normalize() is
    the model's job) and labels_batch is int32 [B]. Run `initializer` with the
    feed_dict `feed(epoch, skip_batches)` before use. The arrays are fed through
    placeholders rather than embedded as constants, which would put the whole
    data set into the graph and every checkpoint's meta graph.

    training=True: full batches only, augmented if `augment` (crop, flip, and
    a `cutout`-pixel square if > 0; see augment_batch), the order and the
    augmentation drawn from (seed, epoch): initialised with the same epoch and
    skip_batches=k, it yields exactly what the k+1-th batch of that epoch was,
    so a resumed run continues its epoch instead of replaying another. Past one
    pass it reshuffles and goes on. training=False: every image exactly once
    per initialisation, in order, the last batch possibly short.

    worker=(i, n), training: every worker draws the same batches and keeps the i-th of n equal
    slices of each, as towers split a batch: together the n workers train on the batches of
    one process, an epoch is one pass over the set, and resume skips the same batches.
    """
    if len(images) != len(labels) or not len(images):
        raise ValueError('input_pipeline: need equally many images and labels, at least one; '
                         'got %d and %d' % (len(images), len(labels)))

    def to_model_input(batch_images, batch_labels, key=None):
        if key is not None and augment:
            batch_images = data_utils.augment_batch(batch_images, key, cutout=cutout)
        if key is not None and worker[1] > 1:
            # Augmented whole (the draws are the batch's), then sliced: cheap at 32x32.
            start, size = order.share(batch_size, worker[1], worker[0])
            batch_images = batch_images[start:start + size]
            batch_labels = batch_labels[start:start + size]
        batch_images = tf.cast(batch_images, tf.float32)
        if image_size != data_utils.IMAGE_SHAPE[0]:
            batch_images = tf.image.resize(batch_images, [image_size, image_size])
        return batch_images, tf.cast(batch_labels, tf.int32)

    with tf.name_scope('train_input' if training else 'eval_input'):
        images_ph = tf.compat.v1.placeholder(tf.uint8, (None,) + data_utils.IMAGE_SHAPE, name='images')
        labels_ph = tf.compat.v1.placeholder(tf.int64, (None,), name='labels')
        dataset = tf.data.Dataset.from_tensor_slices((images_ph, labels_ph))
        epochs = order.EpochOrder(seed) if training else None
        if training:
            dataset = dataset.shuffle(len(images), seed=epochs.seed, reshuffle_each_iteration=True)
            dataset = dataset.repeat().batch(batch_size, drop_remainder=True)
            # Skipped batches are only gathered, never augmented; the index keys the augmentation.
            dataset = dataset.enumerate().skip(epochs.skip_batches).map(
                lambda index, batch: to_model_input(*batch, key=tf.stack([epochs.seed, index])),
                num_parallel_calls=2)
        else:
            dataset = dataset.batch(batch_size).map(to_model_input, num_parallel_calls=2)
        # Two batches in flight feed about 280 batches a second.
        iterator = order.initializable_iterator(dataset.prefetch(2))
        images_batch, labels_batch = iterator.get_next()
    return (images_batch, labels_batch, iterator.initializer,
            order.feeder({images_ph: images, labels_ph: labels}, epochs))
