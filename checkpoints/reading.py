"""Finding, reading and restoring checkpoints, for training, inference and export alike."""
import glob
import os
import re
import sys

import tensorflow as tf

from preflight import errors

v1 = tf.compat.v1


# The subfolder of a run's ckpt_dir that keeps its best-scoring checkpoint.
BEST_FOLDER = 'best'

# What a checkpoint prefix becomes on disk: PREFIX.index and PREFIX.data-00000-of-0000N.
FILE_SUFFIX = re.compile(r'\.(index|data-\d+-of-\d+)$')


def checkpoint_prefix(path):
    """The checkpoint prefix for a prefix, a .index/.data file, or a folder: its newest intact
    checkpoint (newest_intact). ModelError if there is none, or if the one named is damaged."""
    if os.path.isdir(path):
        prefix, damaged = newest_intact(path)
        if damaged and not prefix:
            raise errors.ModelError('%s: every checkpoint is damaged (%s)' % (path, '; '.join(
                '%s: %s' % (os.path.basename(p), why) for p, why in damaged)))
        if not prefix:
            raise errors.ModelError('%s: no checkpoint in this folder (no model.ckpt-N.index)' % path)
        return prefix
    path = FILE_SUFFIX.sub('', path)
    if not os.path.exists(path + '.index'):
        if path.endswith(('.pb', '.tflite')) and os.path.isfile(path):
            raise errors.ModelError('%s: a frozen model, not a checkpoint; pass a checkpoint prefix '
                                    'or its folder (train.py --ckpt_dir)' % path)
        near = [p[:-len('.index')] for p in glob.glob(glob.escape(path) + '*.index')]
        raise errors.ModelError('%s: no such checkpoint (expected %s.index)%s' % (
            path, path, '; did you mean %s?' % max(near, key=lambda p: (len(p), p)) if near else ''))
    why = damage(path)
    if why:
        raise errors.ModelError('%s: damaged checkpoint (%s); pass its folder to use the newest intact '
                         'one' % (path, why))
    return path


def damage(prefix):
    """None when every tensor of the checkpoint reads back whole, else why not, in one line."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as e:  # a damaged file raises what its reader happens to: OpError, IndexError...
        return first_line(e)
    return None


def _step(prefix):
    match = re.search(r'-(\d+)$', prefix)
    return int(match.group(1)) if match else -1


def candidates(folder):
    """The checkpoint prefixes in a folder, newest (highest step) first: those the "checkpoint"
    index lists and any other with a .index file, so that an index file that is damaged, or
    lists files since deleted, hides none. A listed path in another folder (an index of
    absolute paths, in a run since copied or moved) stands for the file of that name here: the
    copy's savers must never read, or prune, the original's."""
    listed = []
    try:
        state = tf.train.get_checkpoint_state(folder)
        if state:
            listed = [os.path.join(folder, os.path.basename(p))
                      for p in list(state.all_model_checkpoint_paths) + [state.model_checkpoint_path]]
    except Exception:  # garbage in the index file: text_format's errors, UnicodeDecodeError...
        listed = []
    found = [p[:-len('.index')] for p in glob.glob(os.path.join(glob.escape(folder), '*.index'))]
    prefixes = {os.path.normpath(p) for p in listed + found if os.path.exists(p + '.index')}
    return sorted(prefixes, key=lambda p: (_step(p), os.path.getmtime(p + '.index')), reverse=True)


def newest_intact(folder, say=True):
    """(prefix of the newest checkpoint of `folder` that reads back whole, or None if it holds
    none; [(prefix, why)] of the newer damaged ones, skipped and left in place). With `say`,
    one line on stderr names what was skipped for what."""
    damaged = []
    for prefix in candidates(folder):
        why = damage(prefix)
        if why is None:
            if damaged and say:
                print('note: %s; using %s (the damaged files are left as they are)' % (
                    '; '.join('%s is damaged (%s)' % item for item in damaged), prefix),
                    file=sys.stderr, flush=True)
            return prefix, damaged
        damaged.append((prefix, why))
    return None, damaged


def open_checkpoint(prefix):
    """(reader, {name: shape}); ModelError for a truncated or corrupt checkpoint."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        return reader, reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as e:
        raise errors.ModelError('%s: cannot read checkpoint (%s)' % (prefix, first_line(e))) from e


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
        raise errors.ModelError('%s: cannot read checkpoint (%s)' % (prefix, first_line(e))) from e
    sess.run(assigns, feeds)


def restore_matching(sess, variables, path):
    """Sets every variable of `variables` whose name and shape match the checkpoint at `path`
    (a prefix, file or folder: checkpoint_prefix) to its value there; (prefix, [what
    matched], [what did not]). ModelError for no match, a checkpoint whose names mostly match
    with other shapes, or one that does not read."""
    prefix = checkpoint_prefix(path)
    reader, shapes = open_checkpoint(prefix)
    restored, skipped = match_variables(variables, shapes)
    shaped = [line for line in skipped if ' has shape ' in line]
    # Other shapes for most of the names: another width (a new head alone is a few variables).
    if len(shaped) > len(restored):
        raise errors.ModelError('%s: %d variables matched by name but not by shape (%s, and %d '
                                'more): a model of another --width or --min_depth'
                                % (path, len(shaped), shaped[0], len(shaped) - 1))
    if not restored:
        raise errors.ModelError('%s: no variable matched by name and shape; is it a MobilenetV1 '
                                'checkpoint?' % path)
    assign_from_checkpoint(sess, prefix, reader, restored)
    return prefix, restored, skipped


def first_line(error):
    """The first line of an error that says something: not TensorFlow's 'Graph execution
    error:' heading, nor its '{{function_node ...}}' prefixes, nor the 'From /job:...:' of the
    worker that passed it on."""
    text = re.sub(r'\{\{[^}]*\}\}', '', getattr(error, 'message', None) or str(error))
    # Where the op was made ('Detected at node ... defined at', the Python stack, 'Node: ...')
    # says where the error is, not what it is.
    text = re.sub(r'Detected at node.*?\n\s*Node: [^\n]*', '', text, flags=re.S)
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and line.strip() != 'Graph execution error:'
             and not line.strip().startswith(('Detected at node', 'File "', 'Traceback',
                                              'From /job:'))]
    return lines[0] if lines else type(error).__name__
