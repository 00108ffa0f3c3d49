"""Transfer learning as TF-Slim's: --checkpoint_exclude_scopes, --trainable_scopes, frozen batch norm."""
import json

import numpy as np
import tensorflow as tf

import train
from conftest import own_images

SMALL = ['--width', '0.25', '--batch_size', '8', '--eval_batch_size', '8', '--epochs', '1']


def values(prefix):
    """The model's variables in a checkpoint, without the optimizer's slots."""
    reader = tf.train.load_checkpoint(str(prefix))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.startswith('MobilenetV1/') and not name.endswith('/Momentum')}


def test_the_head_alone_trains_on_new_classes_and_the_base_stays_as_restored(capsys, tiny_cifar,
                                                                             tmp_path):
    base = tmp_path / 'base'
    assert train.main(SMALL + ['--data_dir', str(tiny_cifar), '--ckpt_dir', str(base),
                               '--steps_per_epoch', '3']) == 0
    capsys.readouterr()
    photos = own_images(tmp_path / 'photos')
    head = tmp_path / 'head'
    flags = SMALL + ['--dataset', 'folder', '--data_dir', str(photos), '--val_size', '6',
                     '--ckpt_dir', str(head), '--load_pretrain', '1', '--pretrain_path', str(base),
                     '--checkpoint_exclude_scopes', 'MobilenetV1/Logits',
                     '--trainable_scopes', 'MobilenetV1/Logits', '--lr', '0.05']
    assert train.main(flags) == 0
    out = capsys.readouterr().out
    assert 'MobilenetV1/Logits/Conv2d_1c_1x1/weights excluded by --checkpoint_exclude_scopes' in out
    before = values(tf.train.latest_checkpoint(str(base)))
    after = values(tf.train.latest_checkpoint(str(head)))
    base_names = [n for n in before if not n.startswith('MobilenetV1/Logits')]
    assert any('moving_mean' in n for n in base_names)
    # Nothing frozen got an optimizer slot: no gradient was computed for it.
    slots = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(head))).get_variable_to_shape_map()
    assert sorted(n for n in slots if n.endswith('/Momentum')) == [
        'MobilenetV1/Logits/Conv2d_1c_1x1/biases/Momentum',
        'MobilenetV1/Logits/Conv2d_1c_1x1/weights/Momentum']
    # Frozen entirely: weights and batch-norm statistics alike.
    for name in base_names:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    assert after['MobilenetV1/Logits/Conv2d_1c_1x1/weights'].shape[-1] == 3
    assert json.loads((head / 'config.json').read_text())['label_names'] == ['cat', 'dog', 'eel']

    # Stage two: everything, from the head's run; the base now moves.
    full = tmp_path / 'full'
    assert train.main(SMALL + ['--dataset', 'folder', '--data_dir', str(photos), '--val_size', '6',
                               '--ckpt_dir', str(full), '--load_pretrain', '1', '--pretrain_path',
                               str(head), '--lr', '0.01']) == 0
    tuned = values(tf.train.latest_checkpoint(str(full)))
    assert not np.array_equal(tuned['MobilenetV1/Conv2d_0/weights'],
                              before['MobilenetV1/Conv2d_0/weights'])
    assert not np.array_equal(tuned['MobilenetV1/Conv2d_0/BatchNorm/moving_mean'],
                              before['MobilenetV1/Conv2d_0/BatchNorm/moving_mean'])

    # Stage two with batch norm frozen: the weights (gamma and beta too) move, every moving
    # statistic stays the checkpoint's.
    frozen = tmp_path / 'frozen_bn'
    assert train.main(SMALL + ['--dataset', 'folder', '--data_dir', str(photos), '--val_size', '6',
                               '--ckpt_dir', str(frozen), '--load_pretrain', '1', '--pretrain_path',
                               str(head), '--lr', '0.01', '--freeze_batch_norm', '1']) == 0
    kept = values(tf.train.latest_checkpoint(str(frozen)))
    statistics = [n for n in kept if n.endswith(('moving_mean', 'moving_variance'))]
    assert len(statistics) == 2 * 27
    for name in statistics:
        np.testing.assert_array_equal(kept[name], before[name], err_msg=name)
    # (A base trained 3 steps has statistics far from its activations: relu6 saturates in the
    # first layers, so the layers near the head are the ones sure to move.)
    for name in ('MobilenetV1/Logits/Conv2d_1c_1x1/weights',
                 'MobilenetV1/Conv2d_13_pointwise/BatchNorm/beta'):
        assert not np.array_equal(kept[name], after[name]), name


def test_a_scope_that_names_nothing_is_one_line(capsys, tiny_cifar, tmp_path):
    for flag, more in (('--trainable_scopes', []), ('--checkpoint_exclude_scopes',
                                                    ['--load_pretrain', '1'])):
        assert train.main(SMALL + more + ['--data_dir', str(tiny_cifar), '--ckpt_dir',
                                          str(tmp_path), flag,
                                          'MobilenetV1/Logits,MobilenetV1/Conv2d_99']) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ['train.py: error: %s MobilenetV1/Conv2d_99 names no variable of the model; '
                       'scopes look like MobilenetV1/Logits, MobilenetV1/Conv2d_13_pointwise or '
                       'MobilenetV1/Conv2d_1' % flag]
    # Excluding from a restore that does not happen is a mistake worth a line, too.
    assert train.main(SMALL + ['--data_dir', str(tiny_cifar), '--ckpt_dir', str(tmp_path),
                               '--checkpoint_exclude_scopes', 'MobilenetV1/Logits']) == 2
    assert 'applies to --load_pretrain 1' in capsys.readouterr().err
