"""Write a folder dataset as TF-Slim's TFRecord shards, for `train.py --dataset tfrecord`.

    python3 convert_to_tfrecord.py photos/ photos_tfrecord/ --shards 8
    python3 train.py --dataset tfrecord --data_dir photos_tfrecord/ --image_size 224 --stem imagenet

Reads DIR as train.py --dataset folder does (DIR/train/, DIR/validation/ or val/, DIR/test/,
or class folders directly, all of it training then) and writes OUT/<name>_<split>_<i>-of-<n>
.tfrecord with slim's features (image/encoded: the file's own bytes, image/format,
image/class/label, image/height, image/width, and image/filename as slim's ImageNet scripts)
and OUT/labels.txt ('0:name' lines). Images that cannot be read or do not decode are left
out and named.
Everything is written to a hidden folder first and moved into OUT at the end: an interrupted
conversion leaves nothing half-written behind, and the hidden folder of one that was killed goes
when the next starts. An OUT that holds a TFRecord dataset already is refused.
"""
import os
import re
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from datasets import sources
from preflight import command_line
from preflight import cpu_kernels
from preflight import errors


def main(argv=None):
    parser = command_line.ArgumentParser(description=__doc__)
    parser.add_argument('data_dir', help='folder dataset (class subfolders, or train/ etc.)')
    parser.add_argument('out_dir', help='folder for the shards and labels.txt (created)')
    parser.add_argument('--shards', type=int, default=4,
                        help='shards per split (default: %(default)s; fewer if fewer images)')
    parser.add_argument('--name', default='dataset',
                        help="the shards' name prefix (default: %(default)s)")
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the order the images are written in (default: %(default)s)')
    args = parser.parse_args(argv)
    if args.shards < 1:
        parser.error('--shards must be 1 or more, got %d' % args.shards)
    if not 0 <= args.seed < 2 ** 32:
        parser.error('--seed must be from 0 to 4294967295, got %d' % args.seed)
    words = [w for words in sources.SPLIT_NAMES.values() for w in words
             if re.search(r'(^|[_.-])%s([_.-]|$)' % w, args.name)]
    if words or not re.fullmatch(r'[A-Za-z0-9][A-Za-z0-9_.-]*', args.name):
        parser.error('--name %r: use letters, digits, _ . - and none of the split words %s as a '
                     'word of its own (the shards are found by them)'
                     % (args.name, ', '.join(w for ws in sources.SPLIT_NAMES.values() for w in ws)))
    if os.path.exists(args.out_dir) and not os.path.isdir(args.out_dir):
        parser.error('%s: is a file; pass a new or empty folder for the shards' % args.out_dir)
    inside = os.path.relpath(os.path.realpath(args.out_dir), os.path.realpath(args.data_dir))
    if not inside.startswith(os.pardir):
        parser.error('%s is inside %s: its shards would join the images read; pass a folder '
                     'outside it' % (args.out_dir, args.data_dir))
    return errors.run_program('convert_to_tfrecord.py', lambda: _convert(args),
                              terminate=True)  # SIGTERM cleans up as Ctrl-C does


def _convert(args):
    cpu_kernels.import_tensorflow()  # only once the flags are good
    import tensorflow as tf
    from checkpoints import reading
    from datasets import tfrecords
    try:
        written, bad = tfrecords.convert(args.data_dir, args.out_dir, args.shards, args.name,
                                         args.seed)
    except OSError as e:
        raise errors.UsageError('%s: cannot write (%s)' % (e.filename or args.out_dir,
                                                            e.strerror or e)) from e
    except tf.errors.OpError as e:  # the TFRecord writer's: a full disk, a vanished folder
        raise errors.UsageError('%s: cannot write (%s)' % (args.out_dir,
                                                            reading.first_line(e))) from e
    for path in bad:
        print('skipped (cannot be read or does not decode): %s' % path, file=sys.stderr)
    print('wrote %s to %s' % (', '.join('%d %s records' % (n, s) for s, n in written.items()),
                              args.out_dir))

if __name__ == '__main__':
    sys.exit(main())
