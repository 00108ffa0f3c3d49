"""Finding, reading and restoring checkpoints, for training, inference and export alike."""
import json
import os

import tensorflow as tf

v1 = tf.compat.v1

# The subfolder of a run's ckpt_dir that keeps its best-scoring checkpoint.
BEST_FOLDER = 'best'


class ModelError(Exception):
    """A checkpoint or model file that cannot be used: str(e) is one line naming it."""


def checkpoint_prefix(path):
    """The checkpoint prefix for a prefix, a .index/.data file, or a folder (its latest)."""
    if os.path.isdir(path):
        prefix = tf.train.latest_checkpoint(path)
        if not prefix:
            raise ModelError('%s: no checkpoint in this folder (no "checkpoint" index file)' % path)
        return prefix
    for suffix in ('.index', '.data-00000-of-00001'):
        if path.endswith(suffix):
            path = path[:-len(suffix)]
    if not os.path.exists(path + '.index'):
        raise ModelError('%s: no such checkpoint (expected %s.index)' % (path, path))
    return path


def open_checkpoint(prefix):
    """(reader, {name: shape}); ModelError for a truncated or corrupt checkpoint."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        return reader, reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as e:
        raise ModelError('%s: cannot read checkpoint (%s)' % (prefix, first_line(e))) from e


def run_file(prefix, name):
    """A file a run keeps beside its checkpoints (config.json, metrics.jsonl): in the
    checkpoint's folder, or the folder above for checkpoints under best/. None if absent."""
    folder = os.path.dirname(os.path.abspath(prefix))
    candidates = [folder]
    # Only best/ is a run's own subfolder; the folder above any other may hold unrelated runs.
    if os.path.basename(folder) == BEST_FOLDER:
        candidates.append(os.path.dirname(folder))
    for candidate in candidates:
        path = os.path.join(candidate, name)
        if os.path.exists(path):
            return path
    return None


def read_run_config(prefix):
    """The training config saved with a checkpoint, or {} if there is none."""
    path = run_file(prefix, 'config.json')
    if path is None:
        return {}
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ModelError('%s: cannot read (%s)' % (path, first_line(e))) from e


def checkpoint_names(variables, shapes):
    """{name in the checkpoint: variable}: a weight's moving average where training kept one
    (as slim's evaluation restores), else the weight itself."""
    names = {}
    for var in variables:
        average = var.op.name + '/ExponentialMovingAverage'
        names[average if average in shapes else var.op.name] = var
    return names


def match_variables(variables, shapes):
    """({checkpoint name: variable} for those whose name and shape match, [what did not match])."""
    matched, mismatched = {}, []
    for name, var in checkpoint_names(variables, shapes).items():
        if name not in shapes:
            mismatched.append('%s is not in the checkpoint' % name)
        elif list(shapes[name]) != var.shape.as_list():
            mismatched.append('%s has shape %s in the checkpoint, %s in the model'
                              % (name, list(shapes[name]), var.shape.as_list()))
        else:
            matched[name] = var
    return matched, mismatched


def assign_from_checkpoint(sess, prefix, reader, names_to_variables):
    """Sets each variable to the checkpoint tensor of that name, cast to its dtype, so that
    weights stored as float16 restore into float32 variables."""
    feeds, assigns = {}, []
    try:
        for name, var in names_to_variables.items():
            placeholder = v1.placeholder(var.dtype.base_dtype, var.shape)
            feeds[placeholder] = reader.get_tensor(name).astype(var.dtype.as_numpy_dtype)
            assigns.append(var.assign(placeholder))
    except (tf.errors.OpError, ValueError) as e:
        raise ModelError('%s: cannot read checkpoint (%s)' % (prefix, first_line(e))) from e
    sess.run(assigns, feeds)


def first_line(error):
    text = getattr(error, 'message', None) or str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
