"""Are a detector checkpoint's batch-norm moving statistics what limits it? For each batch norm
under SCOPES, in graph order: the mean and variance of its input over the run's training photos
(letterboxed, as scored) against its moving statistics (the mean's gap in moving standard
deviations, the variances' ratio), then the moving statistics set to them ("precise BN"), so
later layers see earlier ones corrected. Saves the result as a run folder OUT to score with
evaluate.py. Usage: python precise_bn.py CHECKPOINT OUT [SCOPES, default YoloV3/]"""
import os
import shutil
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from datasets import detections  # noqa: E402
from deployment import detectors  # noqa: E402
from pipelines import detection as pipeline  # noqa: E402

v1 = tf.compat.v1


def main(prefix, out, scopes=('YoloV3/',)):
    model = detectors.load(prefix)
    run = model.run
    train = detections.load(run['dataset'], run['data_dir'], run.get('val_size', 0),
                            run.get('test_size', 0), run.get('seed', 0))['train']
    images = [pipeline.evaluation_example(train, i, model.input_size)[0]
              for i in range(train.num_images)]
    graph, sess = model.graph, model.sess
    graph._unsafe_unfinalize()  # the detector's graph is finalized; this adds assignments
    with graph.as_default():
        variables = {v.op.name: v for v in v1.global_variables()}
        layers = []
        for op in graph.get_operations():
            if op.type.startswith('FusedBatchNorm') and op.name.startswith(tuple(scopes)):
                scope = op.name.rsplit('/', 1)[0]
                mean, variance = (variables[scope + '/moving_' + s] for s in ('mean', 'variance'))
                fed = [v1.placeholder(tf.float32, mean.shape) for _ in range(2)]
                layers.append((op, mean, variance, fed,
                               [v1.assign(mean, fed[0]), v1.assign(variance, fed[1])]))
        saver = v1.train.Saver(v1.global_variables())
    for op, mean, variance, fed, assign in layers:
        total, squares, count = 0.0, 0.0, 0
        for image in images:
            x = sess.run(op.inputs[0], {model.images: image[None]})
            x = x.reshape(-1, x.shape[-1]).astype(np.float64)
            total, squares, count = total + x.sum(0), squares + (x ** 2).sum(0), count + len(x)
        data_mean = total / count
        data_variance = np.maximum(squares / count - data_mean ** 2, 0.0)
        moving_mean, moving_variance = sess.run([mean, variance])
        gap = np.abs(data_mean - moving_mean) / np.sqrt(moving_variance + 1e-3)
        ratio = (data_variance + 1e-3) / (moving_variance + 1e-3)
        print('%-52s mean gap (sd) median %.3f max %.2f; variance ratio median %.2f max %.1f'
              % (op.name.rsplit('/', 2)[0], np.median(gap), gap.max(), np.median(ratio),
                 ratio.max()), flush=True)
        sess.run(assign, {fed[0]: data_mean, fed[1]: data_variance})
    os.makedirs(out, exist_ok=True)
    shutil.copy(os.path.join(os.path.dirname(prefix), 'config.json'), out)
    with graph.as_default():
        path = saver.save(sess, os.path.join(out, 'model.ckpt'),
                          global_step=int(prefix.rsplit('-', 1)[1]), write_meta_graph=False)
    print('saved', path)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], *([sys.argv[3].split(',')] if len(sys.argv) > 3 else []))
