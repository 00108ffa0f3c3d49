"""A run's weights as a small checkpoint to share or ship, written all or nothing
(export_weights.py)."""
import os
import shutil

import numpy as np
import tensorflow as tf

from checkpoints import reading
from checkpoints import run_files
from deployment import models
from preflight import errors
from preflight import files
from tasks import classifier

v1 = tf.compat.v1


# What a run keeps beside its checkpoints that an export carries along.
RUN_FILES = ('config.json', 'metrics.jsonl')


def export(prefix, out_dir, float16, overrides=None):
    """Writes OUT/model.ckpt with the weights inference would use."""
    cfg, _ = models.resolve_checkpoint_config(prefix, overrides)
    reader, shapes = reading.open_checkpoint(prefix)
    with tf.Graph().as_default():
        classifier.inference_graph(cfg, models.checkpoint_num_classes(prefix))
        matched = models.model_variables(prefix, cfg, shapes)
    values = {}
    try:
        for name, var in matched.items():
            value = reader.get_tensor(name)
            # Batch-norm parameters are few and sensitive; only the weights are halved.
            if float16 and var.op.name.endswith('weights'):
                value = value.astype(np.float16)
            values[var.op.name] = value
    except (tf.errors.OpError, ValueError) as e:  # e.g. a truncated .data file
        raise errors.ModelError('%s: cannot read checkpoint (%s)'
                                     % (prefix, reading.first_line(e))) from e
    with tf.Graph().as_default():
        variables = {name: tf.Variable(value, name=name) for name, value in values.items()}
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            v1.train.Saver(variables, save_relative_paths=True).save(
                sess, os.path.join(out_dir, 'model.ckpt'), write_meta_graph=False)


def write_export(prefix, out_dir, float16, overrides):
    """export() and the run's files, written all or nothing into out_dir; other files there
    (e.g. a command.txt) are left alone."""
    # The "checkpoint" index last: readers never see it point at weights not yet in place.
    with files.staged_folder(out_dir, prefix='.export-', last=('checkpoint',)) as staging:
        export(prefix, staging, float16, overrides)
        sources = {name: run_files.run_file(prefix, name) for name in RUN_FILES}
        for name, source in sources.items():
            if source:
                shutil.copyfile(source, os.path.join(staging, name))
    for name, source in sources.items():
        stale = os.path.join(out_dir, name)
        if not source and os.path.exists(stale):  # from an earlier export: another run's
            os.remove(stale)
