"""Where a run starts from: its own checkpoint (exact resume), pretrained weights, or nothing.

check_resume_config refuses a resume whose settings would change what the checkpoint means;
start() initializes the variables and restores the checkpoint, or the pretrained weights that
match by name and shape.
"""
import math
import os

import tensorflow as tf

from checkpoints import reading
from checkpoints import run_files
import config
import mobilenet
from preflight import errors
from preflight.errors import UsageError
from training import model

v1 = tf.compat.v1


# Values a resumed run must keep: they change the variables, what the model computes, or
# which images an epoch holds. The optimizer's family and weight averaging are checked too.
RESUME_KEYS = ('width', 'min_depth', 'stem', 'use_explicit_padding', 'normalization', 'image_size',
               'dataset', 'val_size', 'test_size', 'seed', 'batch_size', 'steps_per_epoch',
               'mixed_precision', 'trainable_scopes', 'freeze_batch_norm', 'class_weights')


# Values a resumed run may change, at the price of a jump in the learning rate.
SCHEDULE_KEYS = ('epochs', 'lr', 'lr_schedule', 'lr_decay', 'lr_step_epochs', 'lr_step_factor',
                 'warmup_epochs')


def resume_signature(cfg):
    """What a resumed run must share with the run it resumes (cfg with steps_per_epoch resolved)."""
    signature = {key: cfg.get(key) for key in RESUME_KEYS}
    signature['optimizer'] = 'adam' if cfg.get('optimizer') == 'adam' else 'momentum or nesterov'
    signature['ema_decay'] = 'on' if cfg.get('ema_decay') else 'off'
    return signature


def _sizes(sizes):
    return ', '.join('%s %s' % (split, sizes.get(split, 0)) for split in ('train', 'val', 'test'))


def check_resume_config(plan, path, same_data=True):
    """UsageError unless `plan` may resume the run whose config.json is `path` (if any); a note
    for each change it may make. `same_data`: the data must be the run's (its split sizes and
    held-out images), as for a run with a checkpoint to resume; not for one started again."""
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
    sizes = saved.get('split_sizes')
    if same_data and sizes and sizes != plan['split_sizes']:
        raise UsageError('--data_dir %s holds %s images, the run being resumed in %s began on %s: '
                         'its epochs and scores would not be of the same data; restore it, or use '
                         'another --ckpt_dir' % (plan['data_dir'], _sizes(plan['split_sizes']),
                                                 os.path.dirname(path), _sizes(sizes)))
    if same_data and saved.get('held_out') and saved['held_out'] != plan['held_out']:
        raise UsageError('--data_dir %s: images were added or removed since the run being resumed '
                         'in %s began, so --val_size and --test_size carve other held-out images '
                         '(some it trained on); restore the folder, or use another --ckpt_dir'
                         % (plan['data_dir'], os.path.dirname(path)))
    changed = [key for key in SCHEDULE_KEYS if saved[key] != plan[key]]
    if changed:
        print('Note: %s changed since the run began: the learning-rate schedule is recomputed '
              'from here on' % ', '.join('--%s %s (was %s)' % (k, plan[k], saved[k]) for k in changed),
              flush=True)
    towers = plan['towers']
    if saved['towers'] != towers:
        print('Note: --towers %d (was %s): batch norm normalises groups of %d images from here on'
              % (towers, saved['towers'], math.ceil(plan['batch_size'] / towers)), flush=True)


def start(sess, g, plan, latest, damaged, initialize):
    """The variables initialized (`initialize(g.init)`: the session's run, guarded in a
    cluster), then set from the run's newest intact checkpoint `latest` (exact resume; none of
    `damaged` (prefix, why) is deleted) or, with --load_pretrain and no checkpoint, from every
    pretrained weight that matches by name and shape, but those under
    --checkpoint_exclude_scopes (slim's)."""
    excluded = model.scope_list(plan['checkpoint_exclude_scopes']) or []
    # Every worker at once: the variables start from the chief's values (a broadcast).
    initialize(g.init)
    if latest:
        # Saver.restore would take weights of other shapes and fail steps later in a reshape.
        _, shapes = reading.open_checkpoint(latest)
        _, mismatched = reading.match_variables(v1.global_variables(), shapes)
        if mismatched:
            raise UsageError('%s: cannot resume from it (%s%s); it is a checkpoint of a model of '
                             'other flags: use them, or another --ckpt_dir' % (
                                 latest, mismatched[0], ', and %d more' % (len(mismatched) - 1)
                                 if len(mismatched) > 1 else ''))
        try:
            g.saver.restore(sess, latest)
        except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError,
                tf.errors.DataLossError) as e:
            raise UsageError('%s: cannot resume from it (%s); it is not a checkpoint of this run: '
                             'use another --ckpt_dir' % (latest, reading.first_line(e))) from e
        # The savers only delete what they wrote themselves: hand them what earlier runs left,
        # oldest first, all but the damaged checkpoints, which stay for the user to look at.
        unread = [prefix for prefix, _ in damaged]
        for saver, folder in ((g.saver, plan['ckpt_dir']),
                              (g.best_saver, os.path.join(plan['ckpt_dir'], reading.BEST_FOLDER))):
            if os.path.isdir(folder):
                saver.recover_last_checkpoints([p for p in reversed(reading.candidates(folder))
                                                if p not in unread])
        note = ' (--load_pretrain ignored: the run has checkpoints)' if plan['load_pretrain'] else ''
        print('Resuming from %s%s' % (latest, note), flush=True)
    elif plan['load_pretrain']:
        left_out = [v.op.name for v in g.model_variables if mobilenet.in_scopes(v.op.name, excluded)]
        kept = [v for v in g.model_variables if v.op.name not in left_out]
        if not kept:
            raise UsageError('--checkpoint_exclude_scopes %s leaves no variable to restore from '
                             '--pretrain_path; exclude the layers to train anew, such as '
                             'MobilenetV1/Logits' % plan['checkpoint_exclude_scopes'])
        try:
            prefix, restored, skipped = reading.restore_matching(sess, kept, plan['pretrain_path'])
        except errors.ModelError as e:
            raise UsageError('--pretrain_path %s' % e) from e
        skipped += ['%s excluded by --checkpoint_exclude_scopes' % name for name in left_out]
        print('Restored %d variables from %s; skipped %d:' % (len(restored), prefix,
                                                              len(skipped)), flush=True)
        for line in summarize_skipped(skipped):
            print('  ' + line, flush=True)


# Variables missing from a pretrained checkpoint named one a line up to this many; beyond it
# (a detector's new head: hundreds), counted by layer scope.
SKIPPED_NAMED = 12


def summarize_skipped(skipped):
    """The lines on variables not restored: each named, or when there are many, those missing
    from the checkpoint counted under their first two scope parts (YoloV3/Scale_32: 40)."""
    missing = ' is not in the checkpoint'
    absent = [line[:-len(missing)] for line in skipped if line.endswith(missing)]
    if len(skipped) <= SKIPPED_NAMED or not absent:
        return list(skipped)
    scopes = {}
    for name in absent:
        scope = '/'.join(name.split('/')[:2])
        scopes[scope] = scopes.get(scope, 0) + 1
    return [line for line in skipped if not line.endswith(missing)] + [
        '%s/...: %d variables not in the checkpoint (new layers)' % (scope, count)
        for scope, count in scopes.items()]
