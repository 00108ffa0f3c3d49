"""One training run: epochs of steps, scoring, metrics, checkpoints, exact resume.

train.py's work once its flags are resolved and TensorFlow is imported; Ctrl-C and SIGTERM
save a checkpoint that the same command resumes from.
"""
import contextlib
import fcntl
import glob
import json
import math
import os
import signal
import sys
import threading
import time

import numpy as np
import tensorflow as tf
from tqdm import tqdm

import checkpoints
import datasets
import distributed
import run_data
import training
from cli import UsageError

v1 = tf.compat.v1

# In a run's folder while train.py trains it: the process's id, under an exclusive lock.
LOCK_FILE = 'train.lock'


def write_scalars(writer, step, values):
    summary = v1.Summary(value=[v1.Summary.Value(tag=k, simple_value=v) for k, v in values.items()])
    writer.add_summary(summary, step)
    writer.flush()


def train(cfg, cluster=None):
    """Train (or resume) the run in cfg['ckpt_dir']; return the summary dict. With a `cluster`
    (cluster.Cluster), as one of its workers: worker 0, the chief, alone writes the folder."""
    training.check_config(cfg)
    ckpt_dir = cfg['ckpt_dir']
    chief = cluster is None or cluster.is_chief
    try:
        os.makedirs(ckpt_dir, exist_ok=True)
    except OSError as e:
        raise UsageError('--ckpt_dir %s: cannot create it (%s)' % (ckpt_dir, e.strerror)) from e
    with owning(ckpt_dir) if chief else contextlib.nullcontext():
        return train_in(cfg, ckpt_dir, cluster)


@contextlib.contextmanager
def owning(ckpt_dir):
    """Two trainings in one folder would interleave their checkpoints and metrics: a second is
    refused while the first holds the folder's lock, which the kernel releases however the first
    ends (a SIGKILL too), so a lock is never stale."""
    path = os.path.join(ckpt_dir, LOCK_FILE)
    try:
        f = open(path, 'a+')
    except OSError as e:
        raise UsageError('%s: cannot write (%s)' % (path, e.strerror)) from e
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip()
            raise UsageError('--ckpt_dir %s is in use by another training%s; wait for it to end, '
                             'or use another --ckpt_dir' % (
                                 ckpt_dir, ' (process %s)' % holder if holder.isdigit() else ''))
        except OSError:
            pass  # a filesystem without locks (some network mounts): unguarded, as before
        f.seek(0)
        f.truncate()
        f.write('%d\n' % os.getpid())
        f.flush()
        yield


def train_in(cfg, ckpt_dir, cluster):
    chief = cluster is None or cluster.is_chief
    config_path = os.path.join(ckpt_dir, 'config.json')
    latest, damaged = checkpoints.newest_intact(ckpt_dir)
    metrics_path = os.path.join(ckpt_dir, 'metrics.jsonl')
    # Killed before its first checkpoint was whole: nothing to resume, but the same run.
    unsaved = not latest and (damaged or os.path.exists(metrics_path)
                              and os.path.getsize(metrics_path))
    if unsaved and not os.path.exists(config_path):
        raise UsageError('--ckpt_dir %s holds %s but not the config.json of its run; use another '
                         '--ckpt_dir' % (ckpt_dir, 'only damaged checkpoints' if damaged else
                                         'a metrics.jsonl and no checkpoint'))
    datasets.forget_skipped_images()
    data = run_data.load_data(cfg)
    num_train = run_data.split_size(data, 'train')
    if num_train < cfg['batch_size']:
        raise UsageError('--batch_size %d is larger than the %d training images'
                         % (cfg['batch_size'], num_train))
    cfg = dict(cfg, steps_per_epoch=run_data.steps_in_epoch(cfg, data))
    if not cfg['steps_per_epoch']:
        smallest = min(map(datasets.split_size, run_data.worker_shards(cfg, data)))
        raise UsageError('--batch_size %d gives each of the %d workers %d images a step, more than '
                         'the %d records of the smallest worker\'s TFRecord shards; pass '
                         '--batch_size %d or less' % (cfg['batch_size'], cfg['workers'],
                                                      run_data.worker_batch(cfg), smallest,
                                                      smallest * cfg['workers']))
    if latest or unsaved:
        training.check_resume_config(cfg, config_path, data['label_names'])
    if latest and not os.path.exists(config_path) and chief:
        print('Note: %s has checkpoints but no config.json: resuming with this command\'s flags, '
              'unchecked against the run\'s (the checkpoint\'s shapes are checked); a new '
              'config.json is written' % ckpt_dir, flush=True)
    if unsaved:
        if chief:
            read_metrics(metrics_path, 0)
        print('Note: %s holds no intact checkpoint of this run (it stopped before its first '
              'save was whole); starting it again' % ckpt_dir, flush=True)
    scored = 'test' if run_data.split_size(data, 'test') else 'val' if run_data.split_size(
        data, 'val') else None
    print('Data: %s, %d classes; %s; scored on %s' % (
        cfg['dataset'], len(data['label_names']), ', '.join(
            '%s %d images' % (split, run_data.split_size(data, split))
            for split in ('train', 'val', 'test') if run_data.split_size(data, split)),
        'the %s split' % scored if scored else
        'nothing (no validation or test split: pass --val_size N to hold some images out)'),
        flush=True)

    with tf.Graph().as_default() as graph:
        if cluster:
            worker = distributed.Worker(cluster, training.session_config(cfg),
                                        cfg['worker_timeout'])
            with worker.strategy.scope():
                g = training.build_graph(cfg, data, cfg['steps_per_epoch'], worker.strategy,
                                         (cluster.index, cluster.size))
            session = v1.Session(worker.target, config=worker.config)
            print('Worker %d of %d (%s%s): %d images of each batch of %d' % (
                cluster.index, cluster.size, cluster.address, ', the chief' if chief else '',
                run_data.worker_batch(cfg), cfg['batch_size']), flush=True)
            sharding = run_data.describe_sharding(cfg, data, cluster.index)
            if sharding:
                print(sharding, flush=True)
        else:
            worker, devices = None, distributed.local_replicas()
            if devices:
                strategy = distributed.local_strategy(devices)
                with strategy.scope():
                    g = training.build_graph(cfg, data, cfg['steps_per_epoch'], strategy)
                print('Replicas: %d devices (%s), %d images each of every batch of %d' % (
                    len(devices), ', '.join(devices), cfg['batch_size'] // len(devices),
                    cfg['batch_size']), flush=True)
            else:
                g = training.build_graph(cfg, data, cfg['steps_per_epoch'])
            session = v1.Session(config=training.session_config(cfg))
        with session as sess:
            return run_session(cfg, sess, graph, g, worker, latest, damaged, data)


def run_session(cfg, sess, graph, g, worker, latest, damaged, data):
    ckpt_dir, chief = cfg['ckpt_dir'], worker is None or worker.cluster.is_chief
    # Every worker at once: the variables start from the chief's values (a broadcast).
    guarded(sess, worker, g.init, starting=True)
    if latest:
        resume(sess, g, latest, cfg, [prefix for prefix, _ in damaged])
    elif cfg['load_pretrain']:
        prefix, restored, skipped = training.restore_pretrained(
            sess, g.model_variables, cfg['pretrain_path'], cfg['checkpoint_exclude_scopes'])
        print('Restored %d variables from %s; skipped %d:' % (len(restored), prefix,
                                                              len(skipped)), flush=True)
        for line in skipped:
            print('  ' + line, flush=True)
    if chief:
        write_config(os.path.join(ckpt_dir, 'config.json'),
                     dict(cfg, label_names=data['label_names']))
    writer = v1.summary.FileWriter(ckpt_dir) if chief else None
    graph.finalize()  # the loop below must not grow the graph step after step
    try:
        return train_loop(cfg, sess, g, writer, worker)
    finally:
        if writer:
            writer.close()


def write_config(path, values):
    with writing(path):
        try:
            with open(path + '.tmp', 'w') as f:
                json.dump(values, f, indent=1, sort_keys=True)
            os.replace(path + '.tmp', path)
        finally:
            if os.path.exists(path + '.tmp'):
                os.remove(path + '.tmp')


def guarded(sess, worker, fetches, feed_dict=None, starting=False):
    """sess.run; in a cluster with a deadline, a peer's loss raised as distributed.LostWorker."""
    if worker is None:
        return sess.run(fetches, feed_dict)
    try:
        return sess.run(fetches, feed_dict, options=worker.run_options)
    except distributed.PEER_ERRORS as e:
        raise worker.lost(e, starting) from e


def resume(sess, g, latest, cfg, damaged):
    # Saver.restore would take weights of other shapes and fail steps later in a reshape.
    _, shapes = checkpoints.open_checkpoint(latest)
    _, mismatched = checkpoints.match_variables(v1.global_variables(), shapes)
    if mismatched:
        raise UsageError('%s: cannot resume from it (%s%s); it is a checkpoint of a model of other '
                         'flags: use them, or another --ckpt_dir' % (
                             latest, mismatched[0], ', and %d more' % (len(mismatched) - 1)
                             if len(mismatched) > 1 else ''))
    try:
        g.saver.restore(sess, latest)
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
        raise UsageError('%s: cannot resume from it (%s); it is not a checkpoint of this run: '
                         'use another --ckpt_dir' % (latest, checkpoints.first_line(e))) from e
    # The savers only delete what they wrote themselves: hand them what earlier runs left,
    # oldest first, all but the damaged checkpoints, which stay for the user to look at.
    for saver, folder in ((g.saver, cfg['ckpt_dir']),
                          (g.best_saver, os.path.join(cfg['ckpt_dir'], checkpoints.BEST_FOLDER))):
        if os.path.isdir(folder):
            saver.recover_last_checkpoints([p for p in reversed(checkpoints.candidates(folder))
                                            if p not in damaged])
    note = ' (--load_pretrain ignored: the run has checkpoints)' if cfg['load_pretrain'] else ''
    print('Resuming from %s%s' % (latest, note), flush=True)


@contextlib.contextmanager
def writing(path):
    """A write that fails (a full disk, a folder made read-only) is one line: the previous
    checkpoint and metrics are whole (resume drops a metrics line its checkpoint lacks)."""
    try:
        yield
    except OSError as e:
        why = e.strerror or str(e)
    except tf.errors.OpError as e:  # the Saver's
        why = checkpoints.first_line(e)
    else:
        return
    raise UsageError('%s: cannot write (%s); what was saved before is whole: make room and run '
                     'the same command to resume' % (path, why))


@contextlib.contextmanager
def signals_noted():
    """A second Ctrl-C or SIGTERM while the interrupt's checkpoint is written is answered with a
    line, not obeyed: obeying would cost the save it waits for."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; signals go there anyway
        return

    def note(signum, frame):
        print('Still saving the checkpoint; exiting once it is written.', file=sys.stderr,
              flush=True)

    previous = {number: signal.signal(number, note) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def read_metrics(metrics_path, last_epoch):
    """The metrics lines of epochs up to `last_epoch`, rewriting the file without later ones.

    An interrupt between an epoch's metrics line and its checkpoint leaves a line that the
    resumed run writes again; a crash mid-write leaves a line that does not parse.
    """
    if not os.path.exists(metrics_path):
        return []
    records = []
    with open(metrics_path) as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or not isinstance(record.get('epoch', 0), int):
                continue  # damaged by hand: dropped as a line cut short is
            if record.get('epoch', 0) <= last_epoch:
                records.append(record)
    with open(metrics_path + '.tmp', 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in records)
    os.replace(metrics_path + '.tmp', metrics_path)
    return records


def train_loop(cfg, sess, g, writer, worker=None):
    """Epochs until cfg['epochs']: train, evaluate, log, checkpoint. Ctrl-C saves first. In a
    cluster every worker steps and scores in lockstep; the chief alone writes."""
    ckpt_dir, steps_per_epoch = cfg['ckpt_dir'], cfg['steps_per_epoch']
    chief = worker is None or worker.cluster.is_chief
    prefix = os.path.join(ckpt_dir, 'model.ckpt')
    metrics_path = os.path.join(ckpt_dir, 'metrics.jsonl')
    # Python holds the committed state, what the last checkpoint says; the graph counts steps.
    epoch, step_in_epoch, best, seconds, wall_before = sess.run(
        [g.epoch, g.step_in_epoch, g.best_accuracy, g.train_seconds, g.wall_seconds])
    step_in_epoch = min(step_in_epoch, steps_per_epoch)
    records = read_metrics(metrics_path, epoch) if chief else []
    record = records[-1] if records else {}  # what the summary reports if no epoch is left
    resumed_at = time.time()

    def save():
        if not chief:
            return
        # What a save killed part way left: TensorFlow's temporary files, never read again.
        for stray in glob.glob(os.path.join(glob.escape(ckpt_dir), '*.tempstate*')) + glob.glob(
                os.path.join(glob.escape(ckpt_dir), checkpoints.BEST_FOLDER, '*.tempstate*')):
            os.remove(stray)
        with writing(prefix):
            g.saver.save(sess, prefix, global_step=g.global_step, write_meta_graph=False)

    bar, start, stepping, steps_done = None, None, False, step_in_epoch
    reported = set()  # skipped images already named in the log
    try:
        while epoch < cfg['epochs']:
            sess.run(g.train_init, g.train_feed(epoch, step_in_epoch))
            start = time.time()
            losses, accuracies = [], []
            bar = tqdm(total=steps_per_epoch, initial=step_in_epoch, unit='step', file=sys.stderr,
                       desc='epoch %d/%d' % (epoch + 1, cfg['epochs']), dynamic_ncols=True,
                       mininterval=1.0 if sys.stderr.isatty() else 30.0)
            stepping = True
            for _ in range(step_in_epoch, steps_per_epoch):
                _, loss, accuracy, lr = guarded(sess, worker,
                                                [g.train_op, g.loss, g.accuracy, g.lr])
                if not math.isfinite(loss):
                    raise FloatingPointError(
                        'loss is %s at step %d (epoch %d); stopping without saving%s. Lower --lr '
                        'or check the data.' % (
                            loss, sess.run(g.global_step), epoch + 1,
                            ', the last good checkpoint in %s is untouched' % ckpt_dir
                            if checkpoints.candidates(ckpt_dir) else ''))
                losses.append(loss)
                accuracies.append(accuracy)
                bar.update()
                bar.set_postfix(loss='%.3f' % loss, lr='%.4g' % lr, img_s='%.0f' % (
                    len(losses) * cfg['batch_size'] / (time.time() - start)), refresh=False)
            stepping, steps_done = False, steps_per_epoch
            bar.close()
            train_time = time.time() - start
            seconds += train_time
            start = None
            images_per_sec = len(losses) * cfg['batch_size'] / train_time if losses else None

            # An epoch resumed after its last step (interrupted in evaluation or saving) has no
            # training figures to report; it is scored, if it is an epoch to score, and committed.
            record = dict(epoch=int(epoch + 1), step=int(sess.run(g.global_step)),
                          lr=float(lr if losses else sess.run(g.lr)),
                          train_loss=float(np.mean(losses)) if losses else None,
                          train_accuracy=float(np.mean(accuracies)) if losses else None,
                          images_per_sec=None if images_per_sec is None else round(images_per_sec, 1))
            if (epoch + 1) % cfg['eval_every'] == 0 or epoch + 1 == cfg['epochs']:
                record.update(training.score(sess, g))
            skipped = datasets.skipped_images()
            if skipped:
                record.update(skipped_images=len(skipped), skipped_files=sorted(skipped))
                fresh = sorted(set(skipped) - reported)
                if fresh:
                    print('Skipped %d image(s) that do not decode (%d in all): %s' % (
                        len(fresh), len(skipped),
                        '; '.join('%s (%s)' % (n, skipped[n]) for n in fresh)), flush=True)
                reported.update(fresh)
            selection = record.get('val_accuracy', record.get('test_accuracy', best))
            selection = best if selection is None else selection
            wall = wall_before + time.time() - resumed_at
            record.update(train_seconds=round(seconds, 1), wall_seconds=round(wall, 1))

            # Commit: the best copy and the metrics line first, the checkpoint resume reads last,
            # so that an interrupt anywhere here leaves a state resume completes (read_metrics).
            training.set_state(sess, g, epoch=epoch + 1, step_in_epoch=0,
                               best_accuracy=max(best, selection), train_seconds=seconds,
                               wall_seconds=wall)
            best_prefix = os.path.join(ckpt_dir, checkpoints.BEST_FOLDER, 'model.ckpt')
            if selection > best and chief:
                with writing(best_prefix):
                    g.best_saver.save(sess, best_prefix, global_step=g.global_step,
                                      write_meta_graph=False)
            if chief:
                with writing(metrics_path), open(metrics_path, 'a') as f:
                    f.write(json.dumps(record) + '\n')
            save()
            epoch, step_in_epoch, steps_done, best = epoch + 1, 0, 0, max(best, selection)

            if writer:
                write_scalars(writer, record['step'], {
                    k: v for k, v in record.items() if k not in ('epoch', 'step', 'skipped_files')
                    and v is not None})
            print(epoch_line(record, cfg['epochs'], train_time), flush=True)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        # Mid-epoch the graph's counter is exact (a step that was running has finished).
        done = sess.run(g.step_in_epoch) if stepping else steps_done
        training.set_state(sess, g, epoch=epoch, step_in_epoch=done, best_accuracy=best,
                           train_seconds=seconds + (time.time() - start if start else 0.0),
                           wall_seconds=wall_before + time.time() - resumed_at)
        with signals_noted():
            save()
        if chief:
            print('Interrupted: saved %s-%d; run the same command to resume.'
                  % (prefix, sess.run(g.global_step)), file=sys.stderr, flush=True)
        else:
            print('Interrupted; the chief (worker 0) keeps the checkpoints: run the same command '
                  'on every worker to resume.', file=sys.stderr, flush=True)
        raise

    scored = 'test' if 'test' in g.eval else 'val' if 'val' in g.eval else None
    if record and scored and scored + '_accuracy' not in record:
        # --epochs lowered to an epoch the run went past unscored: score the weights it has.
        record = dict(record, **training.score(sess, g))
    return dict(final_test_accuracy=record.get('test_accuracy'),
                final_test_accuracy_tta=record.get('test_accuracy_tta'), best_accuracy=round(float(best), 6),
                best_on='val' if 'val' in g.eval else 'test' if 'test' in g.eval else None,
                epochs=int(epoch),
                train_seconds=round(seconds, 1),
                wall_seconds=round(wall_before + time.time() - resumed_at, 1),
                images_per_sec=record.get('images_per_sec'),
                ckpt=checkpoints.newest_intact(ckpt_dir, say=False)[0] if chief else None)


def epoch_line(record, epochs, train_time):
    parts = ['epoch %d/%d' % (record['epoch'], epochs)]
    if record['train_loss'] is not None:
        parts.append('loss %.4f  train acc %.4f' % (record['train_loss'], record['train_accuracy']))
    if record.get('test_loss') is not None:
        parts.append('test loss %.4f  test acc %.4f' % (record['test_loss'], record['test_accuracy']))
    parts += ['%s %.4f' % (key.replace('_', ' '), record[key])
              for key in ('test_accuracy_tta', 'test_macro_f1', 'val_accuracy', 'val_macro_f1')
              if record.get(key) is not None]
    if record['images_per_sec'] is not None:
        parts.append('%.0f img/s' % record['images_per_sec'])
    parts.append('%.0f s' % train_time)
    return '  '.join(parts)
