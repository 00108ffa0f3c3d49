"""The training loop of any task: epochs of steps, scoring, metrics.jsonl, TensorBoard, best/,
checkpoints and exact resume, Ctrl-C and SIGTERM safety, several workers.

It trains what a plan (training/plan.py) and a task (tasks/classifier.py) describe and knows
nothing of either beyond them. Ctrl-C and SIGTERM save a checkpoint that the same command
resumes from; a kill at any moment leaves a state it resumes from.
"""
import contextlib
import functools
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

from checkpoints import reading
from checkpoints import run_files
from datasets import decoding
from distribution import strategies
from preflight import files
from preflight.errors import DataError, Diverged, UsageError
from training import optimization
from training import resume
from training import train_graph

v1 = tf.compat.v1


def write_scalars(writer, step, values):
    """TensorBoard scalars of `values`; a dict value (a figure per class) as tags 'key/class'."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update({'%s/%s' % (key, name): v for name, v in value.items() if v is not None})
        else:
            flat[key] = value
    summary = v1.Summary(value=[v1.Summary.Value(tag=k, simple_value=v) for k, v in flat.items()])
    writer.add_summary(summary, step)
    writer.flush()


def train(plan, data, task, place=None):
    """Train (or resume) the run in plan['ckpt_dir'] (run_files.run_folder's, held for this
    call); return the summary dict. With a `place` (preflight.cluster.Cluster), as one of its
    workers: the chief alone writes the folder."""
    ckpt_dir, chief = plan['ckpt_dir'], plan['chief']
    config_path = os.path.join(ckpt_dir, 'config.json')
    metrics_path = os.path.join(ckpt_dir, 'metrics.jsonl')
    if chief:
        for path in (config_path, metrics_path):
            files.recover_swap(path)
    found = set(os.listdir(ckpt_dir)) if chief else set()
    latest, damaged = reading.newest_intact(ckpt_dir)
    # Killed before its first checkpoint was whole: nothing to resume, but the same run.
    unsaved = not latest and (damaged or os.path.exists(metrics_path)
                              and os.path.getsize(metrics_path))
    if unsaved and not os.path.exists(config_path):
        raise UsageError('--ckpt_dir %s holds %s but not the config.json of its run; use another '
                         '--ckpt_dir' % (ckpt_dir, 'only damaged checkpoints' if damaged else
                                         'a metrics.jsonl and no checkpoint'))
    if latest or unsaved:
        resume.check_resume_config(plan, config_path, same_data=bool(latest))
    if latest and not os.path.exists(config_path) and chief:
        print('Note: %s has checkpoints but no config.json: resuming with this command\'s flags, '
              'unchecked against the run\'s (the checkpoint\'s shapes are checked); a new '
              'config.json is written' % ckpt_dir, flush=True)
    if unsaved:
        if chief:
            run_files.read_metrics(metrics_path, 0)
        print('Note: %s holds no intact checkpoint of this run (it stopped before its first '
              'save was whole); starting it again' % ckpt_dir, flush=True)

    try:
        return _train(plan, data, task, place, latest, damaged)
    except Exception:
        if chief and not latest and not unsaved and not reading.newest_intact(ckpt_dir)[0] \
                and not os.path.exists(metrics_path):
            discard_untrained(ckpt_dir, found)  # refused or failed before its first save
        raise


def discard_untrained(ckpt_dir, found):
    """Removes what a run that saved nothing wrote in its folder, all but the names `found`
    there when it began (run_files.run_folder removes the folder then, if it made it): a later
    run there is a new one."""
    for name in os.listdir(ckpt_dir):
        path = os.path.join(ckpt_dir, name)
        if name not in found and (name in ('config.json', SKIPPED_FILE) or name.startswith(
                'events.out.tfevents.')) and os.path.isfile(path):
            os.remove(path)


def _train(plan, data, task, place, latest, damaged):
    ckpt_dir, chief = plan['ckpt_dir'], plan['chief']
    config_path = os.path.join(ckpt_dir, 'config.json')
    session_config = optimization.session_config(plan)
    with tf.Graph().as_default() as graph:
        worker, strategy, share = None, None, (0, 1)
        if place:
            worker = strategies.Worker(place, session_config, plan['worker_timeout'])
            worker.wait_for_peers()
            strategy, share = worker.strategy, (place.index, place.size)
        elif plan['replica_devices']:
            strategy = strategies.local_strategy(plan['replica_devices'])
        with strategy.scope() if strategy else contextlib.nullcontext():
            g = train_graph.build_graph(plan, data, task, strategy, share)
        session = (v1.Session(worker.target, config=worker.config) if worker
                   else v1.Session(config=session_config))
        with session as sess:
            starting = functools.partial(guarded, sess, worker, starting=True)
            resume.start(sess, g, plan, latest, damaged, starting)
            if place:
                # Before the first step and the first write: workers apart would drift.
                strategies.check_agreement(starting, strategy, dict(
                    plan.shared(), start_step=int(sess.run(g.global_step))), place)
            if chief:
                run_files.write_config(config_path, plan.saved())
            writer = v1.summary.FileWriter(ckpt_dir) if chief else None
            graph.finalize()  # the loop below must not grow the graph step after step
            try:
                return train_loop(plan, task, sess, g, writer, worker, latest)
            finally:
                if writer:
                    writer.close()


def guarded(sess, worker, fetches, feed_dict=None, starting=False):
    """sess.run; in a cluster with a deadline, a peer's loss raised as errors.LostWorker."""
    if worker is None:
        return sess.run(fetches, feed_dict)
    try:
        return sess.run(fetches, feed_dict, options=worker.run_options)
    except strategies.PEER_ERRORS as e:
        raise worker.lost(e, starting) from e


# In a run's folder: every image skipped because it did not decode, and why, a line each.
SKIPPED_FILE = 'skipped_images.txt'

# Skipped images named on the console at the end of an epoch; the rest are in SKIPPED_FILE.
SKIPPED_SHOWN = 10


def report_skipped(skipped, fresh, path=None):
    """A line on the images of `fresh` (names in `skipped`, {name: why}) first skipped this epoch,
    SKIPPED_SHOWN of them named; with a `path`, the whole list written there."""
    shown = '; '.join('%s (%s)' % (name, skipped[name]) for name in fresh[:SKIPPED_SHOWN])
    if path:
        with run_files.writing(path):
            files.write_files({path: ''.join('%s\t%s\n' % (name, skipped[name])
                                             for name in sorted(skipped))})
    more = len(fresh) - SKIPPED_SHOWN
    print('Skipped %d image(s) that do not decode (%d in all): %s%s' % (
        len(fresh), len(skipped), shown, '; and %d more%s' % (
            more, ', all in %s' % path if path else '') if more > 0 else ''), flush=True)


def check_decoded(before, after, reported, path=None):
    """DataError if the steps between two decodes_tried() counts decoded nothing but skipped
    images: they trained on nothing (an image that does not decode is left out of its batch).
    The images are named first, as an epoch's end names them."""
    if after['decoded'] > before['decoded'] or after['skipped'] == before['skipped']:
        return
    skipped = decoding.skipped_images()
    fresh = sorted(set(skipped) - reported)
    if fresh:
        report_skipped(skipped, fresh, path)
    raise DataError('no training image decoded in this epoch (the %d images that do not decode '
                    'are named above): nothing to train on' % len(skipped))


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


def train_loop(plan, task, sess, g, writer, worker=None, latest=None):
    """Epochs until plan['epochs']: train, evaluate, log, checkpoint. Ctrl-C saves first. In a
    cluster every worker steps and scores in lockstep; the chief alone writes. `latest`: the
    checkpoint the run resumed from, if any."""
    ckpt_dir, steps_per_epoch, chief = plan['ckpt_dir'], plan['steps_per_epoch'], plan['chief']
    prefix = os.path.join(ckpt_dir, 'model.ckpt')
    metrics_path = os.path.join(ckpt_dir, 'metrics.jsonl')
    skipped_path = os.path.join(ckpt_dir, SKIPPED_FILE)
    # Python holds the committed state, what the last checkpoint says; the graph counts steps.
    epoch, step_in_epoch, best, seconds, wall_before = sess.run(
        [g.epoch, g.step_in_epoch, g.best_score, g.train_seconds, g.wall_seconds])
    step_in_epoch = min(step_in_epoch, steps_per_epoch)
    records = run_files.read_metrics(metrics_path, epoch) if chief else []
    record = records[-1] if records else {}  # what the summary reports if no epoch is left
    resumed_at = time.time()
    newest = latest  # the run's newest checkpoint, the summary's 'ckpt'

    def save():
        """The chief's checkpoint of the session: its prefix (None on other workers)."""
        if not chief:
            return None
        # What a save killed part way left: TensorFlow's temporary files, never read again.
        for stray in glob.glob(os.path.join(glob.escape(ckpt_dir), '*.tempstate*')) + glob.glob(
                os.path.join(glob.escape(ckpt_dir), reading.BEST_FOLDER, '*.tempstate*')):
            os.remove(stray)
        with run_files.writing(prefix):
            return os.path.normpath(g.saver.save(sess, prefix, global_step=g.global_step,
                                                 write_meta_graph=False))

    bar, start, stepping, steps_done = None, None, False, step_in_epoch
    reported = set()  # skipped images already named in the log
    try:
        while epoch < plan['epochs']:
            sess.run(g.train_init, g.train_feed(epoch, step_in_epoch))
            start = time.time()
            losses, figures = [], []
            bar = tqdm(total=steps_per_epoch, initial=step_in_epoch, unit='step', file=sys.stderr,
                       desc='epoch %d/%d' % (epoch + 1, plan['epochs']), dynamic_ncols=True,
                       mininterval=1.0 if sys.stderr.isatty() else 30.0)
            stepping, tried = True, decoding.decodes_tried()
            for _ in range(step_in_epoch, steps_per_epoch):
                _, loss, step_figures, lr = guarded(sess, worker,
                                                    [g.train_op, g.loss, g.train_metrics, g.lr])
                if not math.isfinite(loss):
                    raise Diverged(
                        'loss is %s at step %d (epoch %d); stopping without saving%s. Lower --lr '
                        'or check the data.' % (
                            loss, sess.run(g.global_step), epoch + 1,
                            ', the last good checkpoint in %s is untouched' % ckpt_dir
                            if newest else ''))
                losses.append(loss)
                figures.append(step_figures)
                bar.update()
                bar.set_postfix(loss='%.3f' % loss, lr='%.4g' % lr, img_s='%.0f' % (
                    len(losses) * plan['batch_size'] / (time.time() - start)), refresh=False)
            stepping, steps_done = False, steps_per_epoch
            bar.close()
            if losses and not any(losses):  # a loss of exactly 0 each step: were there images?
                check_decoded(tried, decoding.decodes_tried(), reported,
                              skipped_path if chief else None)
            train_time = time.time() - start
            seconds += train_time
            start = None
            images_per_sec = len(losses) * plan['batch_size'] / train_time if losses else None

            # An epoch resumed after its last step (interrupted in evaluation or saving) has no
            # training figures to report; it is scored, if it is an epoch to score, and committed.
            record = dict(epoch=int(epoch + 1), step=int(sess.run(g.global_step)),
                          lr=float(lr if losses else sess.run(g.lr)),
                          train_loss=float(np.mean(losses)) if losses else None,
                          **{'train_' + key: float(np.mean([f[key] for f in figures]))
                             if losses else None for key in g.train_metrics},
                          images_per_sec=None if images_per_sec is None else round(images_per_sec, 1))
            if (epoch + 1) % plan['eval_every'] == 0 or epoch + 1 == plan['epochs']:
                record.update(train_graph.score(sess, g))
            skipped = decoding.skipped_images()
            if skipped:
                # Each line names the images first skipped in its epoch; the file, all of them.
                fresh = sorted(set(skipped) - reported)
                record.update(skipped_images=len(skipped), skipped_files=fresh)
                if fresh:
                    report_skipped(skipped, fresh, skipped_path if chief else None)
                reported.update(fresh)
            selection = record.get('%s_%s' % (plan['best_on'], task.BEST_METRIC))
            selection = best if selection is None else selection
            wall = wall_before + time.time() - resumed_at
            record.update(train_seconds=round(seconds, 1), wall_seconds=round(wall, 1))

            # Commit: the best copy and the metrics line first, the checkpoint resume reads last,
            # so that an interrupt anywhere here leaves a state resume completes (read_metrics).
            train_graph.set_state(sess, g, epoch=epoch + 1, step_in_epoch=0,
                                  best_score=max(best, selection), train_seconds=seconds,
                                  wall_seconds=wall)
            best_prefix = os.path.join(ckpt_dir, reading.BEST_FOLDER, 'model.ckpt')
            if selection > best and chief:
                with run_files.writing(best_prefix):
                    g.best_saver.save(sess, best_prefix, global_step=g.global_step,
                                      write_meta_graph=False)
            if chief:
                with run_files.writing(metrics_path), open(metrics_path, 'a') as f:
                    f.write(json.dumps(record) + '\n')
            newest = save() or newest
            epoch, step_in_epoch, steps_done, best = epoch + 1, 0, 0, max(best, selection)

            if writer:
                write_scalars(writer, record['step'], {
                    k: v for k, v in record.items() if k not in ('epoch', 'step', 'skipped_files')
                    and v is not None})
            parts = ['epoch %d/%d' % (record['epoch'], plan['epochs'])] + task.epoch_parts(record)
            if record['images_per_sec'] is not None:
                parts.append('%.0f img/s' % record['images_per_sec'])
            print('  '.join(parts + ['%.0f s' % train_time]), flush=True)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        # Mid-epoch the graph's counter is exact (a step that was running has finished).
        done = sess.run(g.step_in_epoch) if stepping else steps_done
        train_graph.set_state(sess, g, epoch=epoch, step_in_epoch=done, best_score=best,
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

    scored = plan['scored_split']
    if record and scored and '%s_%s' % (scored, task.BEST_METRIC) not in record:
        # --epochs lowered to an epoch the run went past unscored: score the weights it has.
        record = dict(record, **train_graph.score(sess, g))
    return dict(task.summary(record, best),
                best_on=plan['best_on'],
                epochs=int(epoch),
                train_seconds=round(seconds, 1),
                wall_seconds=round(wall_before + time.time() - resumed_at, 1),
                images_per_sec=record.get('images_per_sec'),
                ckpt=newest if chief else None)

