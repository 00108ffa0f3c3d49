"""The classifier: the first task the training loop trains, written as any task is.

A task is a module that gives the loop (training/trainer.py, training/train_graph.py) what
only it knows:

    NAME                        what config.json and the summary call it
    BEST_METRIC                 the figure of the scored split that best/ keeps the best of
    load_data(cfg)              its dataset reader: the splits, and in 'facts' what the plan
                                keeps of them (split sizes, steps per epoch, the split scored)
    input_pipeline(...)         a split's batches
    step(...)                   head and loss on one batch: (loss, {metric: value}, minimize op,
                                model variables)
    evaluation(...)             each split's per-batch fetches, and the function that turns the
                                split's batches into its figures
    epoch_parts(record)         its figures in the epoch line; summary(record): in the last line
    inference_graph(cfg, n)     its export: the graph freeze_graph.py freezes

Everything else (epochs, checkpoints, exact resume, Ctrl-C, metrics.jsonl, TensorBoard, best/,
several workers) is the loop's and does not know it trains a classifier.
"""
import functools

import tensorflow as tf

from preflight import cpu_kernels
from tasks import classification_metrics
from training import model
from training import optimization
from training import run_data

v1 = tf.compat.v1


NAME = 'classify'
BEST_METRIC = 'accuracy'

# The frozen graph's node names (freeze_graph.py, deployment/models.py).
INPUT_NODE = 'input'
OUTPUT_NODE = 'MobilenetV1/Predictions/Reshape_1'
LOGITS_NODE = 'MobilenetV1/Logits/SpatialSqueeze'
LOGITS_BIASES = 'MobilenetV1/Logits/Conv2d_1c_1x1/biases'


def load_data(cfg):
    return run_data.load_data(cfg)


def input_pipeline(cfg, data, split, training, worker=(0, 1)):
    return run_data.input_pipeline(cfg, data, split, len(data['label_names']), training, worker)


def step(cfg, images, labels, data, global_step, lr, replica=(0, 1)):
    loss, accuracy, minimize, variables = training_step(
        cfg, images, labels, len(data['label_names']), global_step, lr, data.get('class_weights'),
        replica, towers=cfg['towers'], pointwise=cfg['pointwise'])
    return loss, dict(accuracy=accuracy), minimize, variables


def training_step(cfg, images, labels, num_classes, global_step, lr, class_weights=None,
                  replica=(0, 1), towers=None, pointwise=None):
    """(loss, accuracy, minimize op, model variables) of the training tower on one batch;
    `class_weights` (one per class) weigh each image's loss by its class. Under tf.distribute
    `replica` is (this replica's index, how many): the optimizer sums the replicas' gradients,
    so each minimizes its share, 1/replicas of its loss, and together they take the step of one
    process on the global batch. `towers` and `pointwise` are the plan's; without them, cfg's
    are resolved as cpu_kernels.settle would (a cfg that did not go through it)."""
    # Dropout keyed by (seed, step) as the augmentation is: exact on resume, as nothing else
    # about a step depends on how many steps this process has run.
    dropout_seed = tf.stack([tf.constant(cfg['seed'], tf.int64), tf.cast(global_step, tf.int64)])
    logits = model.build_model(
        images, cfg, num_classes, is_training=True,
        towers=cpu_kernels.training_towers(cfg) if towers is None else towers,
        pointwise=cpu_kernels.training_pointwise(cfg) if pointwise is None else pointwise,
        dropout_seed=dropout_seed, replica=replica)
    # Before the optimizer adds its slots under the same scope.
    model_variables = v1.global_variables(scope='MobilenetV1/')
    model.check_scopes('trainable_scopes', cfg['trainable_scopes'], model_variables)
    model.check_scopes('checkpoint_exclude_scopes', cfg['checkpoint_exclude_scopes'],
                       model_variables)
    # Layers outside --trainable_scopes get no gradient (and so no slots, no backward pass).
    trained = model.trained_variables(cfg, model_variables)
    # Label -1: an image that did not decode (pipelines/streamed.py), kept in place, counted
    # nowhere.
    valid = tf.cast(labels >= 0, tf.float32)
    known = tf.maximum(labels, 0)
    targets = tf.one_hot(known, num_classes)
    if cfg['label_smoothing']:
        targets = targets * (1.0 - cfg['label_smoothing']) + cfg['label_smoothing'] / num_classes
    losses = tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits) * valid
    if class_weights is not None:
        losses *= tf.gather(tf.constant(class_weights, tf.float32), known)
    images = tf.maximum(tf.reduce_sum(valid), 1.0)
    loss = tf.reduce_sum(losses) / images
    accuracy = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), labels),
                                     tf.float32)) / images
    regularization = v1.get_collection(v1.GraphKeys.REGULARIZATION_LOSSES)
    total_loss = loss + tf.add_n(regularization) if regularization else loss
    # Batch-norm moving averages update with every step, as slim's train_op did.
    with tf.control_dependencies(v1.get_collection(v1.GraphKeys.UPDATE_OPS)):
        minimize = optimization.make_optimizer(cfg, lr).minimize(
            total_loss / replica[1], global_step, var_list=trained)
    return loss, accuracy, minimize, model_variables


def evaluation(cfg, data, getter=None):
    """{split: (initializer, feed, sums, finish_evaluation)} of the test and validation splits
    there are: sums are per-batch tensors that finish_evaluation turns into the split's
    figures. `getter` reads the weights evaluated (their moving averages, with --ema_decay)."""
    num_classes = len(data['label_names'])
    evaluations = {}
    for split in ('test', 'val'):
        if not run_data.split_size(data, split):
            continue
        images, labels, init, feed = input_pipeline(cfg, data, split, training=False)

        def logits_of(batch):
            return model.build_model(batch, cfg, num_classes, False, reuse=True, getter=getter,
                                     towers=cfg['towers'], pointwise=cfg['pointwise'])

        logits = logits_of(images)
        # Images counted as they come: a streamed split may skip some that do not decode.
        sums = dict(loss=tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(
            labels=tf.one_hot(labels, num_classes), logits=logits)),
            accuracy=_count_correct(logits, labels), images=tf.cast(tf.size(labels), tf.float32),
            confusion=tf.math.confusion_matrix(labels, tf.argmax(logits, 1, output_type=tf.int32),
                                               num_classes, dtype=tf.float32))
        if cfg['eval_flip_tta']:
            flipped = logits_of(tf.reverse(images, [2]))
            sums['accuracy_tta'] = _count_correct(tf.nn.softmax(logits) + tf.nn.softmax(flipped),
                                                  labels)
        evaluations[split] = (init, feed, sums,
                              functools.partial(finish_evaluation, keys=tuple(sums)))
    return evaluations


def _count_correct(scores, labels):
    predictions = tf.argmax(scores, 1, output_type=tf.int32)
    return tf.reduce_sum(tf.cast(tf.equal(predictions, labels), tf.float64))


def finish_evaluation(batches, keys):
    """{'loss', 'accuracy', 'macro_f1'[, 'accuracy_tta']} from a split's batches of sums
    (dicts of `keys`)."""
    totals = {key: sum(batch[key] for batch in batches) for key in keys}
    count, confusion = totals.pop('images'), totals.pop('confusion')
    result = {key: float(value / count) if count else None for key, value in totals.items()}
    result['macro_f1'] = classification_metrics.macro_f1(confusion) if count else None
    return result


def epoch_parts(record):
    """The classifier's figures in an epoch's line."""
    parts = []
    if record['train_loss'] is not None:
        parts.append('loss %.4f  train acc %.4f' % (record['train_loss'],
                                                    record['train_accuracy']))
    if record.get('test_loss') is not None:
        parts.append('test loss %.4f  test acc %.4f' % (record['test_loss'],
                                                        record['test_accuracy']))
    parts += ['%s %.4f' % (key.replace('_', ' '), record[key])
              for key in ('test_accuracy_tta', 'test_macro_f1', 'val_accuracy', 'val_macro_f1')
              if record.get(key) is not None]
    return parts


def summary(record, best):
    """The classifier's figures in the run's last line: the last epoch's record, the best score."""
    return dict(final_test_accuracy=record.get('test_accuracy'),
                final_test_accuracy_tta=record.get('test_accuracy_tta'),
                best_accuracy=round(float(best), 6))


def inference_graph(cfg, num_classes):
    """input placeholder -> preprocessing -> MobileNetV1 (moving statistics, no dropout):
    (input, probabilities)."""
    images = v1.placeholder(tf.float32, [None, cfg['image_size'], cfg['image_size'], 3],
                            name=INPUT_NODE)
    model.build_model(images, cfg, num_classes, is_training=False)
    return images, v1.get_default_graph().get_tensor_by_name(OUTPUT_NODE + ':0')
