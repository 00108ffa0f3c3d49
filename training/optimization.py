"""The learning-rate schedule, the optimizer and the session's thread settings."""
import math

import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from preflight import cpu_kernels

v1 = tf.compat.v1


def learning_rate(cfg, progress):
    """Learning rate at `progress` (a float tensor, in epochs)."""
    lr, total = cfg['lr'], float(cfg['epochs'])
    if cfg['lr_schedule'] == 'exponential':
        # Staircase: the old recipe's "x0.99 every epoch".
        lr = lr * tf.pow(cfg['lr_decay'], tf.floor(progress))
    elif cfg['lr_schedule'] == 'step':
        lr = lr * tf.pow(cfg['lr_step_factor'], tf.floor(progress / cfg['lr_step_epochs']))
    elif cfg['lr_schedule'] == 'cosine':
        lr = lr * 0.5 * (1.0 + tf.cos(math.pi * tf.minimum(progress / total, 1.0)))
    else:
        lr = lr * tf.maximum(1.0 - progress / total, 0.0)
    if cfg['warmup_epochs'] > 0:
        lr = lr * tf.minimum(1.0, (progress + 1e-3) / cfg['warmup_epochs'])
    return lr


def make_optimizer(cfg, lr):
    if cfg['optimizer'] == 'adam':
        optimizer = v1.train.AdamOptimizer(lr)
    else:
        optimizer = v1.train.MomentumOptimizer(lr, cfg['momentum'],
                                               use_nesterov=cfg['optimizer'] == 'nesterov')
    if cfg['mixed_precision']:
        # Dynamic loss scaling; a step whose gradients overflow is skipped (global_step too).
        optimizer = v1.mixed_precision.MixedPrecisionLossScaleOptimizer(optimizer, 'dynamic')
    return optimizer


def session_config(cfg):
    """The session's settings for a settled cfg (preflight.cpu_kernels.settle: towers known)."""
    config_proto = v1.ConfigProto()
    towers = cfg['towers']
    if towers > 1:
        # The cores shared out between the towers, which run side by side: on a few cores this
        # wastes less time than splitting every small op (batch norm, depthwise) across them all.
        config_proto.intra_op_parallelism_threads = max(1, cpu_kernels.usable_cores() // towers)
        config_proto.inter_op_parallelism_threads = towers
    if cfg['xla']:
        config_proto.graph_options.optimizer_options.global_jit_level = v1.OptimizerOptions.ON_1
    if cfg['mixed_precision']:
        # Grappler casts what is safe to float16 on GPUs (and nothing on a CPU).
        config_proto.graph_options.rewrite_options.auto_mixed_precision = \
            rewriter_config_pb2.RewriterConfig.ON
    return config_proto
