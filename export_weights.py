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
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from preflight import command_line
from preflight import cpu_kernels
from preflight import errors
from preflight import files


def main(argv=None):
    parser = command_line.ArgumentParser(description=__doc__)
    parser.add_argument('ckpt', help='checkpoint prefix, or a run folder: its latest checkpoint')
    parser.add_argument('out_dir', help='folder to write')
    parser.add_argument('--float16', action='store_true', help='store the conv weights as float16')
    command_line.add_architecture_flags(parser)
    args = parser.parse_args(argv)
    return errors.run_program('export_weights.py', lambda: export_weights(args),
                              terminate=True)  # SIGTERM cleans up as Ctrl-C does


def export_weights(args):
    blocker = files.file_in_the_way(args.out_dir)
    if blocker:
        raise errors.UsageError('out_dir %s: %s is a file, not a folder' % (args.out_dir, blocker))
    cpu_kernels.import_tensorflow()  # only once the flags are good
    import tensorflow as tf
    from checkpoints import reading
    from checkpoints import run_files
    from deployment import exporting
    prefix = reading.checkpoint_prefix(args.ckpt)
    run_config = run_files.run_file(prefix, 'config.json')
    if os.path.abspath(args.out_dir) in (os.path.dirname(os.path.abspath(prefix)), None if
                                         run_config is None else os.path.dirname(run_config)):
        # Its "checkpoint" index and config.json would replace the run's: no resume after.
        raise errors.ModelError('%s: is the folder of the run exported; name another folder to '
                                'write' % args.out_dir)
    try:
        exporting.write_export(prefix, args.out_dir, args.float16,
                               command_line.architecture_overrides(args))
    except OSError as e:
        raise errors.UsageError('%s: %s' % (e.filename or args.out_dir, e.strerror or e)) from e
    except tf.errors.OpError as e:  # the Saver's, writing the new checkpoint
        raise errors.UsageError('%s: cannot write (%s)' % (args.out_dir,
                                                           reading.first_line(e))) from e
    size = sum(os.path.getsize(os.path.join(args.out_dir, f)) for f in os.listdir(args.out_dir))
    print('wrote %s from %s (%s bytes in %s)'
          % (os.path.join(args.out_dir, 'model.ckpt'), prefix, format(size, ','), args.out_dir))


if __name__ == '__main__':
    sys.exit(main())
