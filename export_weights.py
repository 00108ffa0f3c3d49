"""Export a run's model weights as a small checkpoint to share or ship (e.g. pretrained/).

    python3 export_weights.py ckpt/fast pretrained/ --float16

Writes OUT/model.ckpt (only the MobilenetV1 variables: weight averages in place
of the weights where training kept them, no optimizer state), OUT/checkpoint,
and the run's config.json and metrics.jsonl beside it, so that
`train.py --load_pretrain 1 --pretrain_path OUT`, `evaluate.py OUT` and
`freeze_graph.py --ckpt OUT` read it like any checkpoint. With --float16 the
convolution weights are stored as float16 (half the size); restoring casts
them back to float32.
"""
import argparse
import os
import shutil
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import tensorflow as tf

import inference
import train

v1 = tf.compat.v1


def export(prefix, out_dir, float16):
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    model = [name for name in shapes if name.startswith('MobilenetV1/')
             and not name.endswith('/ExponentialMovingAverage')
             and '/Momentum' not in name and '/Adam' not in name]
    values = {}
    for name in model:
        average = name + '/ExponentialMovingAverage'
        value = reader.get_tensor(average if average in shapes else name)
        # Batch-norm parameters are tiny and sensitive; only the weights are halved.
        if float16 and name.endswith('weights'):
            value = value.astype(np.float16)
        values[name] = value
    os.makedirs(out_dir, exist_ok=True)
    with tf.Graph().as_default():
        variables = {name: tf.Variable(value, name=name) for name, value in values.items()}
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            path = v1.train.Saver(variables, save_relative_paths=True).save(
                sess, os.path.join(out_dir, 'model.ckpt'), write_meta_graph=False)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('ckpt', help='checkpoint prefix, or a run folder: its latest checkpoint')
    parser.add_argument('out_dir', help='folder to write')
    parser.add_argument('--float16', action='store_true', help='store the conv weights as float16')
    args = parser.parse_args(argv)
    try:
        prefix = inference.checkpoint_prefix(args.ckpt)
        inference.checkpoint_num_classes(prefix)
    except inference.ModelError as e:
        print('export_weights.py: error: %s' % e, file=sys.stderr)
        return 2
    path = export(prefix, args.out_dir, args.float16)
    run_dir = os.path.dirname(os.path.abspath(prefix))
    for name in ('config.json', 'metrics.jsonl'):
        for folder in (run_dir, os.path.dirname(run_dir)):
            if os.path.exists(os.path.join(folder, name)):
                shutil.copyfile(os.path.join(folder, name), os.path.join(args.out_dir, name))
                break
    size = sum(os.path.getsize(os.path.join(args.out_dir, f)) for f in os.listdir(args.out_dir))
    print('wrote %s from %s (%s bytes in %s)' % (path, prefix, format(size, ','), args.out_dir))
    return 0


if __name__ == '__main__':
    sys.exit(main())
