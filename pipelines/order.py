"""How a training pipeline's batches are drawn, for both pipelines: in an order seeded by
(seed, epoch) and resumable at any batch, and shared out between workers, GPUs and towers.

Initialised with the same epoch and skip_batches=k, a pipeline yields what the k+1-th batch of
that epoch was, so a resumed run continues its epoch instead of replaying another; a batch's
augmentation is keyed by the same numbers, so it is the same batch, augmented the same way.
"""
import tensorflow as tf

v1 = tf.compat.v1


class EpochOrder:
    """The placeholders of a training pipeline's epoch and of the batches it skips, and the
    seed of the epoch's order (an int64 tensor) that they make with the run's seed."""

    def __init__(self, seed):
        self.epoch = v1.placeholder_with_default(tf.constant(0, tf.int64), [], 'epoch')
        self.skip_batches = v1.placeholder_with_default(tf.constant(0, tf.int64), [],
                                                        'skip_batches')
        self.seed = seed * 1000003 + self.epoch

    def feed(self, values, epoch=0, skip_batches=0):
        """The feed_dict that initialises the pipeline: `values` (its data's placeholders) and
        where in which epoch to start."""
        feed = dict(values)
        feed.update({self.epoch: epoch, self.skip_batches: skip_batches})
        return feed


def feeder(values, order=None):
    """feed(epoch=0, skip_batches=0) of a pipeline fed `values`: with an EpochOrder (training),
    also where to start; without one (evaluation), the values alone."""
    def feed(epoch=0, skip_batches=0):
        return order.feed(values, epoch, skip_batches) if order else dict(values)
    return feed


def initializable_iterator(dataset):
    """An iterator re-initialised each epoch and each evaluation. Autotuning's background thread
    sleeps for up to a minute between rounds, and re-initialising waits for it to wake up; fixed
    settings suffice (a call prepares a whole batch of 32x32 images in 7 ms on one busy core)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return v1.data.make_initializable_iterator(dataset.with_options(options))


def share(batch_size, parts, index):
    """(start, size) of share `index` of `parts` equal shares of a batch of `batch_size`: a
    worker's of the global batch, a GPU's of its worker's, a tower's of its replica's.
    `index` and `batch_size` may be tensors."""
    size = batch_size // parts
    return index * size, size
