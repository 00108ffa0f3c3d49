"""The training graph of one run, for any task: the run's state, the task's input pipeline and
step (on towers, or on tf.distribute replicas), the learning rate, weight averaging, the task's
evaluation, and the savers."""
import argparse
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow as tf

from distribution import strategies
from training import optimization

v1 = tf.compat.v1
tf.get_logger().setLevel('ERROR')  # Saver's deprecation notices are not the user's business


# Variables that make a checkpoint a resumable run rather than just weights.
STATE_SCOPE = 'train_state'


def build_graph(plan, data, task, strategy=None, worker=(0, 1)):
    """The training graph of `task` on `data`. With a tf.distribute `strategy` (call inside its
    scope), the step is one replica's, on this `worker`'s (index, count) slice of each global
    batch. g.train_metrics: the task's figures of a step, beside g.loss."""
    v1.set_random_seed(plan['seed'])
    g = argparse.Namespace()

    with v1.variable_scope(STATE_SCOPE):
        g.global_step = v1.train.get_or_create_global_step()
        g.epoch = v1.get_variable('epoch', [], tf.int64, v1.zeros_initializer(), trainable=False)
        g.step_in_epoch = v1.get_variable('step_in_epoch', [], tf.int64, v1.zeros_initializer(),
                                          trainable=False)
        # The best score of the task's BEST_METRIC so far (named when accuracy was the only one).
        g.best_score = v1.get_variable('best_accuracy', [], tf.float32, v1.zeros_initializer(),
                                       trainable=False)
        # Seconds spent in training steps, and in all (evaluation and saving too), over resumes.
        g.train_seconds = v1.get_variable('train_seconds', [], tf.float64, v1.zeros_initializer(),
                                          trainable=False)
        g.wall_seconds = v1.get_variable('wall_seconds', [], tf.float64, v1.zeros_initializer(),
                                         trainable=False)
        # Written from Python at epoch ends and on interrupt: one op sets them all.
        g.state = dict(epoch=g.epoch, step_in_epoch=g.step_in_epoch, best_score=g.best_score,
                       train_seconds=g.train_seconds, wall_seconds=g.wall_seconds)
        g.state_feeds = {k: v1.placeholder(v.dtype.base_dtype, [], k) for k, v in g.state.items()}
        g.set_state = tf.group([v.assign(g.state_feeds[k]) for k, v in g.state.items()])

    images, labels, g.train_init, g.train_feed = task.input_pipeline(
        plan, data, 'train', training=True, worker=worker)
    progress = tf.cast(g.epoch, tf.float32) + tf.cast(g.step_in_epoch,
                                                      tf.float32) / plan['steps_per_epoch']
    g.lr = optimization.learning_rate(plan, progress)
    if strategy is None:
        g.loss, g.train_metrics, minimize, g.model_variables = task.step(
            plan, images, labels, data, g.global_step, g.lr)
    else:
        g.loss, g.train_metrics, minimize, g.model_variables = strategies.replicated_step(
            strategy, plan, task, images, labels, data, g.global_step, g.lr)
    updates = [minimize]
    eval_getter = None
    if plan['ema_decay']:
        # Weight averaging: evaluation (and export) read the shadow copies, saved under slim's
        # '<variable>/ExponentialMovingAverage' names. num_updates warms the decay up from 0.1.
        ema = v1.train.ExponentialMovingAverage(plan['ema_decay'], num_updates=g.global_step)
        with tf.control_dependencies([minimize]):
            updates.append(ema.apply(g.model_variables))
        eval_getter = lambda getter, *args, **kwargs: _average_or_self(ema, getter(*args, **kwargs))
    with tf.control_dependencies(updates):
        g.train_op = v1.assign_add(g.step_in_epoch, 1)

    g.eval = task.evaluation(plan, data, eval_getter)
    g.init = v1.global_variables_initializer()
    g.saver = v1.train.Saver(max_to_keep=plan['keep_checkpoints'], save_relative_paths=True)
    g.best_saver = v1.train.Saver(max_to_keep=1, save_relative_paths=True)
    return g


def _average_or_self(ema, var):
    average = ema.average(var)
    return var if average is None else average


def set_state(sess, g, **values):
    sess.run(g.set_state, {g.state_feeds[k]: v for k, v in values.items()})


def evaluate(sess, g, split):
    """The task's figures (its split's finish) over every batch of the split."""
    init, feed, fetches, finish = g.eval[split]
    sess.run(init, feed())
    batches = []
    while True:
        try:
            batches.append(sess.run(fetches))
        except tf.errors.OutOfRangeError:
            break
    return finish(batches)


def score(sess, g):
    """{'test_<figure>', ...[, 'val_<figure>', ...]}: evaluate() on every split there is."""
    return {split + '_' + key: value for split in g.eval
            for key, value in evaluate(sess, g, split).items()}
