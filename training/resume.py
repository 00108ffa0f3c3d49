"""Where a run starts from: its own checkpoint (exact resume), or pretrained weights.

check_resume_config refuses a resume whose settings would change what the checkpoint means;
resume() restores it; restore_pretrained() takes what matches by name and shape.
"""
import math
import os

import tensorflow as tf

from checkpoints import reading
from checkpoints import run_files
import config
from preflight import errors
from preflight.errors import UsageError
from training import model

v1 = tf.compat.v1


# Values a resumed run must keep: they change the variables, what the model computes, or
# which images an epoch holds. The optimizer's family and weight averaging are checked too.
RESUME_KEYS = ('width', 'min_depth', 'stem', 'use_explicit_padding', 'normalization', 'image_size',
               'dataset', 'val_size', 'test_size', 'seed', 'batch_size', 'steps_per_epoch',
               'mixed_precision', 'trainable_scopes', 'class_weights')


def restore_pretrained(sess, variables, path, exclude_scopes=''):
    """Load every variable whose name and shape match `path`, but those under `exclude_scopes`
    (slim's --checkpoint_exclude_scopes); return (prefix, restored, skipped)."""
    excluded = model.scope_list(exclude_scopes) or []
    left_out = [v for v in variables if any(v.op.name.startswith(s) for s in excluded)]
    kept = [v for v in variables if not any(v.op.name.startswith(s) for s in excluded)]
    try:
        prefix = reading.checkpoint_prefix(path)
        reader, shapes = reading.open_checkpoint(prefix)
        restored, skipped = reading.match_variables(kept, shapes)
        skipped += ['%s excluded by --checkpoint_exclude_scopes' % v.op.name for v in left_out]
        if not restored:
            raise errors.ModelError('%s: no variable matched by name and shape; is it a '
                                         'MobilenetV1 checkpoint?' % path)
        reading.assign_from_checkpoint(sess, prefix, reader, restored)
    except errors.ModelError as e:
        raise UsageError('--pretrain_path %s' % e) from e
    return prefix, restored, skipped

# Values a resumed run may change, at the price of a jump in the learning rate.
SCHEDULE_KEYS = ('epochs', 'lr', 'lr_schedule', 'lr_decay', 'lr_step_epochs', 'lr_step_factor',
                 'warmup_epochs')


def resume_signature(cfg):
    """What a resumed run must share with the run it resumes (cfg with steps_per_epoch resolved)."""
    signature = {key: cfg.get(key) for key in RESUME_KEYS}
    signature['optimizer'] = 'adam' if cfg.get('optimizer') == 'adam' else 'momentum or nesterov'
    signature['ema_decay'] = 'on' if cfg.get('ema_decay') else 'off'
    return signature


def check_resume_config(plan, path):
    """UsageError unless `plan` may resume the run whose config.json is `path` (if any); a note
    for each change it may make."""
    if not os.path.exists(path):
        return
    try:
        # Defaults for values older runs did not record.
        saved = dict(config.DEFAULTS, **run_files.load_config(path))
    except errors.ModelError as e:
        raise UsageError('%s; fix or delete it (resume then takes this command\'s flags), or '
                         'use another --ckpt_dir' % e) from e
    for key, value in resume_signature(plan).items():
        if resume_signature(saved)[key] != value:
            raise UsageError('--%s %s differs from the run being resumed in %s (%s); use another '
                             '--ckpt_dir, or the same value' % (key, value, os.path.dirname(path),
                                                                resume_signature(saved)[key]))
    label_names = plan['label_names']
    if saved.get('label_names', label_names) != label_names:
        raise UsageError('--data_dir %s holds other classes (%s) than the run being resumed in %s '
                         '(%s); use another --ckpt_dir, or the same data'
                         % (plan['data_dir'], ', '.join(label_names), os.path.dirname(path),
                            ', '.join(map(str, saved['label_names']))))
    changed = [key for key in SCHEDULE_KEYS if saved[key] != plan[key]]
    if changed:
        print('Note: %s changed since the run began: the learning-rate schedule is recomputed '
              'from here on' % ', '.join('--%s %s (was %s)' % (k, plan[k], saved[k]) for k in changed),
              flush=True)
    towers = plan['towers']
    if saved['towers'] != towers:
        print('Note: --towers %d (was %s): batch norm normalises groups of %d images from here on'
              % (towers, saved['towers'], math.ceil(plan['batch_size'] / towers)), flush=True)


def resume(sess, g, latest, plan, damaged):
    """Restore the run's newest intact checkpoint `latest` (none of `damaged` is deleted)."""
    # Saver.restore would take weights of other shapes and fail steps later in a reshape.
    _, shapes = reading.open_checkpoint(latest)
    _, mismatched = reading.match_variables(v1.global_variables(), shapes)
    if mismatched:
        raise UsageError('%s: cannot resume from it (%s%s); it is a checkpoint of a model of other '
                         'flags: use them, or another --ckpt_dir' % (
                             latest, mismatched[0], ', and %d more' % (len(mismatched) - 1)
                             if len(mismatched) > 1 else ''))
    try:
        g.saver.restore(sess, latest)
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
        raise UsageError('%s: cannot resume from it (%s); it is not a checkpoint of this run: '
                         'use another --ckpt_dir' % (latest, reading.first_line(e))) from e
    # The savers only delete what they wrote themselves: hand them what earlier runs left,
    # oldest first, all but the damaged checkpoints, which stay for the user to look at.
    for saver, folder in ((g.saver, plan['ckpt_dir']),
                          (g.best_saver, os.path.join(plan['ckpt_dir'], reading.BEST_FOLDER))):
        if os.path.isdir(folder):
            saver.recover_last_checkpoints([p for p in reversed(reading.candidates(folder))
                                            if p not in damaged])
    note = ' (--load_pretrain ignored: the run has checkpoints)' if plan['load_pretrain'] else ''
    print('Resuming from %s%s' % (latest, note), flush=True)
