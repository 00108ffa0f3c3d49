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
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import tensorflow as tf

import checkpoints
import inference

v1 = tf.compat.v1

# What a run keeps beside its checkpoints that an export carries along.
RUN_FILES = ('config.json', 'metrics.jsonl')


def export(prefix, out_dir, float16, overrides=None):
    """Writes OUT/model.ckpt with the weights inference would use."""
    cfg, _ = inference.resolve_checkpoint_config(prefix, overrides)
    reader, shapes = checkpoints.open_checkpoint(prefix)
    with tf.Graph().as_default():
        inference.build_inference_graph(cfg, inference.checkpoint_num_classes(prefix))
        matched = inference.model_variables(prefix, cfg, shapes)
    values = {}
    try:
        for name, var in matched.items():
            value = reader.get_tensor(name)
            # Batch-norm parameters are few and sensitive; only the weights are halved.
            if float16 and var.op.name.endswith('weights'):
                value = value.astype(np.float16)
            values[var.op.name] = value
    except (tf.errors.OpError, ValueError) as e:  # e.g. a truncated .data file
        raise checkpoints.ModelError('%s: cannot read checkpoint (%s)'
                                     % (prefix, checkpoints.first_line(e))) from e
    with tf.Graph().as_default():
        variables = {name: tf.Variable(value, name=name) for name, value in values.items()}
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            v1.train.Saver(variables, save_relative_paths=True).save(
                sess, os.path.join(out_dir, 'model.ckpt'), write_meta_graph=False)


def write_export(prefix, out_dir, float16, overrides):
    """export() and the run's files, staged in a hidden folder and moved into out_dir only once
    all are written; other files in out_dir (e.g. a command.txt) are left alone."""
    # The topmost folder this export creates: removed again if it fails.
    created = None
    folder = os.path.abspath(out_dir)
    while not os.path.exists(folder):
        created, folder = folder, os.path.dirname(folder)
    staging, done = None, False
    try:
        os.makedirs(out_dir, exist_ok=True)
        staging = tempfile.mkdtemp(prefix='.export-', dir=out_dir)
        export(prefix, staging, float16, overrides)
        sources = {name: checkpoints.run_file(prefix, name) for name in RUN_FILES}
        for name, source in sources.items():
            if source:
                shutil.copyfile(source, os.path.join(staging, name))
        # The "checkpoint" index last: readers never see it point at weights not yet in place.
        for name in sorted(os.listdir(staging), key=lambda n: n == 'checkpoint'):
            os.replace(os.path.join(staging, name), os.path.join(out_dir, name))
        for name, source in sources.items():
            stale = os.path.join(out_dir, name)
            if not source and os.path.exists(stale):  # from an earlier export: another run's
                os.remove(stale)
        done = True
    finally:
        if staging:
            shutil.rmtree(staging, ignore_errors=True)
        if created and not done:
            shutil.rmtree(created, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('ckpt', help='checkpoint prefix, or a run folder: its latest checkpoint')
    parser.add_argument('out_dir', help='folder to write')
    parser.add_argument('--float16', action='store_true', help='store the conv weights as float16')
    inference.add_architecture_flags(parser)
    args = parser.parse_args(argv)
    try:
        prefix = checkpoints.checkpoint_prefix(args.ckpt)
        run_config = checkpoints.run_file(prefix, 'config.json')
        if os.path.abspath(args.out_dir) in (os.path.dirname(os.path.abspath(prefix)), None if
                                             run_config is None else os.path.dirname(run_config)):
            # Its "checkpoint" index and config.json would replace the run's: no resume after.
            raise checkpoints.ModelError('%s: is the folder of the run exported; name another '
                                         'folder to write' % args.out_dir)
        write_export(prefix, args.out_dir, args.float16, inference.architecture_overrides(args))
    except checkpoints.ModelError as e:
        print('export_weights.py: error: %s' % e, file=sys.stderr)
        return 2
    except OSError as e:
        print('export_weights.py: error: %s: %s' % (e.filename or args.out_dir, e.strerror or e),
              file=sys.stderr)
        return 2
    except tf.errors.OpError as e:  # the Saver's, writing the new checkpoint
        print('export_weights.py: error: %s: cannot write (%s)'
              % (args.out_dir, checkpoints.first_line(e)), file=sys.stderr)
        return 2
    size = sum(os.path.getsize(os.path.join(args.out_dir, f)) for f in os.listdir(args.out_dir))
    print('wrote %s from %s (%s bytes in %s)'
          % (os.path.join(args.out_dir, 'model.ckpt'), prefix, format(size, ','), args.out_dir))
    return 0


if __name__ == '__main__':
    sys.exit(main())
