"""mobilenet.py against TF-Slim's names, shapes and counts, and against a NumPy forward pass."""
import numpy as np
import pytest
import tensorflow as tf

import mobilenet

v1 = tf.compat.v1

# Output channels of Conv2d_0 .. Conv2d_13 (the paper's Table 1).
DEPTHS = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
BN = ['beta', 'gamma', 'moving_mean', 'moving_variance']


def slim_variable_shapes(num_classes=1001, width=1.0, min_depth=8):
    """The variables of a published mobilenet_v1_<width>_<size>.ckpt, written out by hand."""
    depths = [max(int(d * width), min_depth) for d in DEPTHS]
    shapes = {'MobilenetV1/Conv2d_0/weights': [3, 3, 3, depths[0]]}
    for name in BN:
        shapes['MobilenetV1/Conv2d_0/BatchNorm/' + name] = [depths[0]]
    for i in range(1, 14):
        dw, pw = 'MobilenetV1/Conv2d_%d_depthwise/' % i, 'MobilenetV1/Conv2d_%d_pointwise/' % i
        shapes[dw + 'depthwise_weights'] = [3, 3, depths[i - 1], 1]
        shapes[pw + 'weights'] = [1, 1, depths[i - 1], depths[i]]
        for name in BN:
            shapes[dw + 'BatchNorm/' + name] = [depths[i - 1]]
            shapes[pw + 'BatchNorm/' + name] = [depths[i]]
    shapes['MobilenetV1/Logits/Conv2d_1c_1x1/weights'] = [1, 1, depths[-1], num_classes]
    shapes['MobilenetV1/Logits/Conv2d_1c_1x1/biases'] = [num_classes]
    return shapes


def build(size=224, batch=2, **kwargs):
    graph = tf.Graph()
    with graph.as_default():
        images = v1.placeholder(tf.float32, [batch, size, size, 3], name='input')
        logits, end_points = mobilenet.mobilenet_v1(images, **kwargs)
    return graph, images, logits, end_points


@pytest.mark.parametrize('width', [1.0, 0.25])
def test_variable_names_and_shapes_match_slim_checkpoints(width):
    graph, _, _, _ = build(depth_multiplier=width, num_classes=1001)
    got = {v.op.name: v.shape.as_list() for v in graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES)}
    assert got == slim_variable_shapes(width=width, min_depth=8)


def test_only_the_logits_have_a_bias_and_moving_stats_are_not_trained():
    graph, _, _, _ = build()
    # As slim: every variable of the network is a model variable.
    assert graph.get_collection(v1.GraphKeys.MODEL_VARIABLES) == \
        graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES)
    trainable = {v.op.name for v in graph.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES)}
    assert [n for n in trainable if n.endswith('biases')] == ['MobilenetV1/Logits/Conv2d_1c_1x1/biases']
    assert not [n for n in trainable if 'moving_' in n]


def test_moving_stats_stay_untrained_under_a_strategy_and_after_it():
    # tf.distribute appends TRAINABLE_VARIABLES to the collections list it is given: a list
    # shared between variables once made every later moving statistic trainable.
    def moving_trained(graph):
        return [v.op.name for v in graph.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES)
                if 'moving_' in v.op.name]
    with tf.Graph().as_default() as graph:
        strategy = v1.distribute.MirroredStrategy(['/cpu:0'])
        with strategy.scope():
            strategy.extended.call_for_each_replica(lambda: mobilenet.mobilenet_v1(
                v1.placeholder(tf.float32, [2, 32, 32, 3]), num_classes=10,
                depth_multiplier=0.25)[0])
    assert moving_trained(graph) == []
    assert moving_trained(build(size=32, num_classes=10, depth_multiplier=0.25)[0]) == []


def test_end_points_and_shapes():
    _, _, logits, end_points = build(size=224, num_classes=1001)
    assert logits.shape.as_list() == [2, 1001]
    assert end_points['Conv2d_0'].shape.as_list() == [2, 112, 112, 32]
    assert end_points['Conv2d_5_pointwise'].shape.as_list() == [2, 28, 28, 256]
    assert end_points['Conv2d_11_pointwise'].shape.as_list() == [2, 14, 14, 512]
    assert end_points['Conv2d_13_pointwise'].shape.as_list() == [2, 7, 7, 1024]
    assert end_points['AvgPool_1a'].shape.as_list() == [2, 1, 1, 1024]
    assert end_points['Predictions'].op.name == 'MobilenetV1/Predictions/Reshape_1'
    expected = {'Conv2d_0'} | {'Conv2d_%d_%s' % (i, p) for i in range(1, 14)
                               for p in ('depthwise', 'pointwise')}
    assert expected | {'AvgPool_1a', 'Logits', 'Predictions'} == set(end_points)


@pytest.mark.parametrize('stem,final', [('cifar', 2), ('imagenet', 1)])
def test_stems_on_32x32(stem, final):
    _, _, logits, end_points = build(size=32, num_classes=10, conv_defs=mobilenet.STEMS[stem])
    assert end_points['Conv2d_13_pointwise'].shape.as_list() == [2, final, final, 1024]
    assert logits.shape.as_list() == [2, 10]


def test_base_for_a_detection_head_and_global_pool():
    with tf.Graph().as_default():
        images = v1.placeholder(tf.float32, [1, 416, 416, 3])
        net, end_points = mobilenet.mobilenet_v1_base(images, final_endpoint='Conv2d_11_pointwise')
        assert net is end_points['Conv2d_11_pointwise']
        assert 'Conv2d_12_depthwise' not in end_points
        assert end_points['Conv2d_5_pointwise'].shape.as_list() == [1, 52, 52, 256]
        assert net.shape.as_list() == [1, 26, 26, 512]
    _, _, logits, end_points = build(size=None, global_pool=True, num_classes=5)
    assert 'global_pool' in end_points and logits.shape.as_list() == [2, 5]


def test_counts_match_slims_table():
    rows = mobilenet.layer_table(1.0, 224)
    assert sum(r[1] for r in rows) == 3185088
    assert sum(r[2] for r in rows) == 567716352
    last = [r for r in rows if r[0] == 'MobilenetV1/Conv2d_13_pointwise/Conv2D']
    assert last == [('MobilenetV1/Conv2d_13_pointwise/Conv2D', 1048576, 51380224)]
    rows = mobilenet.layer_table(0.75, 128)
    assert (sum(r[1] for r in rows), sum(r[2] for r in rows)) == (1800144, 106002432)


def test_width_multiplier_and_min_depth():
    _, _, _, end_points = build(size=64, depth_multiplier=0.25, min_depth=16)
    assert end_points['Conv2d_0'].shape[-1] == 16  # 32 * 0.25 = 8, raised to min_depth
    assert end_points['Conv2d_13_pointwise'].shape[-1] == 256


def test_update_ops_and_weight_decay():
    graph, _, _, _ = build(size=32, num_classes=10)
    assert len(graph.get_collection(v1.GraphKeys.UPDATE_OPS)) == 27 * 2
    # Conv2d_0, 13 pointwise and the logits; depthwise filters are not decayed by default.
    assert len(graph.get_collection(v1.GraphKeys.REGULARIZATION_LOSSES)) == 15
    graph, _, _, _ = build(size=32, num_classes=10, regularize_depthwise=True)
    assert len(graph.get_collection(v1.GraphKeys.REGULARIZATION_LOSSES)) == 28
    graph, _, _, _ = build(size=32, num_classes=10, is_training=False)
    assert not graph.get_collection(v1.GraphKeys.UPDATE_OPS)


def test_explicit_padding_keeps_shapes_and_pads_once_per_3x3():
    graph, _, logits, end_points = build(size=224, use_explicit_padding=True)
    assert end_points['Conv2d_13_pointwise'].shape.as_list() == [2, 7, 7, 1024]
    assert len([op for op in graph.get_operations() if op.type == 'Pad']) == 14


@pytest.mark.parametrize('kwargs,match', [
    (dict(depth_multiplier=0.0), 'depth_multiplier'),
    (dict(dropout_keep_prob=0.0), 'dropout_keep_prob'),
])
def test_bad_arguments_say_what_to_pass(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(size=32, **kwargs)


def test_bad_input_rank_and_end_point():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match='4-D'):
            mobilenet.mobilenet_v1(v1.placeholder(tf.float32, [32, 32, 3]))
        with pytest.raises(ValueError, match='final_endpoint'):
            mobilenet.mobilenet_v1_base(v1.placeholder(tf.float32, [1, 32, 32, 3]),
                                        final_endpoint='Conv2d_14_pointwise')


# --- NumPy reference: what a published checkpoint's weights must compute.

def _same_pad(x, k, stride):
    h = x.shape[1]
    out = -(-h // stride)
    total = max((out - 1) * stride + k - h, 0)
    pad = (total // 2, total - total // 2)
    return np.pad(x, [(0, 0), pad, pad, (0, 0)])


def _conv(x, w, stride):
    k = w.shape[0]
    x = _same_pad(x, k, stride)
    out = (x.shape[1] - k) // stride + 1
    patches = np.stack([x[:, i:i + stride * out:stride, j:j + stride * out:stride, :]
                        for i in range(k) for j in range(k)], axis=3)  # [B,H,W,k*k,C]
    return np.einsum('bhwpc,pco->bhwo', patches, w.reshape(k * k, w.shape[2], w.shape[3]))


def _depthwise(x, w, stride):
    k = w.shape[0]
    x = _same_pad(x, k, stride)
    out = (x.shape[1] - k) // stride + 1
    patches = np.stack([x[:, i:i + stride * out:stride, j:j + stride * out:stride, :]
                        for i in range(k) for j in range(k)], axis=3)
    return np.einsum('bhwpc,pc->bhwc', patches, w.reshape(k * k, w.shape[2]))


def numpy_mobilenet(x, values, eps=0.001):
    def bn_relu6(net, scope):
        p = {n: values[scope + '/BatchNorm/' + n] for n in BN}
        net = (net - p['moving_mean']) / np.sqrt(p['moving_variance'] + eps) * p['gamma'] + p['beta']
        return np.clip(net, 0, 6)

    net = bn_relu6(_conv(x, values['MobilenetV1/Conv2d_0/weights'], 2), 'MobilenetV1/Conv2d_0')
    for i, conv_def in enumerate(mobilenet.MOBILENETV1_CONV_DEFS[1:], start=1):
        scope = 'MobilenetV1/Conv2d_%d_' % i
        net = bn_relu6(_depthwise(net, values[scope + 'depthwise/depthwise_weights'], conv_def.stride),
                       scope + 'depthwise')
        net = bn_relu6(_conv(net, values[scope + 'pointwise/weights'], 1), scope + 'pointwise')
    net = net.mean(axis=(1, 2))
    logits = net @ values['MobilenetV1/Logits/Conv2d_1c_1x1/weights'][0, 0]
    logits += values['MobilenetV1/Logits/Conv2d_1c_1x1/biases']
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_a_slim_named_checkpoint_restores_and_predicts_like_numpy(tmp_path):
    """Write a checkpoint under slim's names with a separate Saver, restore it into the model."""
    rng = np.random.RandomState(0)
    shapes = slim_variable_shapes(num_classes=11, width=0.25)
    values = {}
    for name, shape in shapes.items():
        if name.endswith('moving_variance') or name.endswith('gamma'):
            values[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            values[name] = (rng.randn(*shape) * (0.3 if 'weights' in name else 0.1)).astype(np.float32)
    with tf.Graph().as_default():
        saver = v1.train.Saver({n: tf.Variable(v) for n, v in values.items()})
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            prefix = saver.save(sess, str(tmp_path / 'mobilenet_v1_0.25_64.ckpt'), write_meta_graph=False)

    graph, images, _, end_points = build(size=64, batch=3, num_classes=11, depth_multiplier=0.25,
                                         is_training=False)
    x = rng.uniform(-1, 1, [3, 64, 64, 3]).astype(np.float32)
    with graph.as_default(), v1.Session() as sess:
        v1.train.Saver().restore(sess, prefix)
        got = sess.run(end_points['Predictions'], {images: x})
    np.testing.assert_allclose(got, numpy_mobilenet(x.astype(np.float64), values), atol=1e-4)


def test_training_batch_norm_uses_batch_statistics_and_updates_moving_averages():
    with tf.Graph().as_default():
        images = v1.placeholder(tf.float32, [4, 8, 8, 3])
        net, end_points = mobilenet.mobilenet_v1_base(images, final_endpoint='Conv2d_0',
                                                      batch_norm_decay=0.9, stddev=0.5)
        pre_bn = tf.compat.v1.get_default_graph().get_tensor_by_name('MobilenetV1/Conv2d_0/Conv2D:0')
        moving_mean = [v for v in v1.global_variables() if v.op.name.endswith('moving_mean')][0]
        updates = v1.get_collection(v1.GraphKeys.UPDATE_OPS)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            x = np.random.RandomState(1).randn(4, 8, 8, 3).astype(np.float32) + 2.0
            out, conv, _ = sess.run([net, pre_bn, updates], {images: x})
            mean = conv.mean(axis=(0, 1, 2))
            expected = np.clip((conv - mean) / np.sqrt(conv.var(axis=(0, 1, 2)) + 0.001), 0, 6)
            np.testing.assert_allclose(out, expected, atol=1e-4)
            np.testing.assert_allclose(sess.run(moving_mean), 0.1 * mean, rtol=1e-4, atol=1e-6)


def test_frozen_batch_norm_trains_on_the_moving_statistics_and_updates_none():
    with tf.Graph().as_default():
        images = v1.placeholder(tf.float32, [4, 8, 8, 3])
        net, _ = mobilenet.mobilenet_v1_base(images, final_endpoint='Conv2d_0', stddev=0.5,
                                             is_training=True, freeze_batch_norm=True)
        pre_bn = v1.get_default_graph().get_tensor_by_name('MobilenetV1/Conv2d_0/Conv2D:0')
        assert not v1.get_collection(v1.GraphKeys.UPDATE_OPS)
        gamma, beta = (v for v in v1.trainable_variables() if v.op.name.endswith(('gamma', 'beta')))
        gradients = tf.gradients(tf.reduce_sum(net), [gamma, beta])
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            x = np.random.RandomState(1).randn(4, 8, 8, 3).astype(np.float32) + 2.0
            out, conv, grads = sess.run([net, pre_bn, gradients], {images: x})
        # Initial statistics (mean 0, variance 1), not the batch's.
        np.testing.assert_allclose(out, np.clip(conv / np.sqrt(1.0 + 0.001), 0, 6), atol=1e-4)
        assert all(np.abs(g).sum() > 0 for g in grads)


@pytest.mark.parametrize('flags', [['--depth_multiplier', '0'], ['--depth_multiplier', 'inf'],
                                   ['--image_size', '-1']])
def test_the_table_command_rejects_bad_sizes(capsys, monkeypatch, flags):
    monkeypatch.setattr('sys.argv', ['mobilenet.py'] + flags)
    with pytest.raises(SystemExit) as exit_info:
        mobilenet.main()
    assert exit_info.value.code == 2
    assert flags[0] + ' must be a finite number greater than 0' in capsys.readouterr().err
