"""The peers benchmark.py measures ours against in the same run (in one tower, the same process;
in towers, its one-tower process): Keras's MobileNet, and PyTorch's CPU training of the same
network when torch is installed.

PyTorch is not a dependency of this project: `pip install torch==2.13.0` (or any CPU build)
into the same environment, and benchmark.py measures it too.
"""
import statistics
import time
import warnings

import numpy as np
import tensorflow as tf

import mobilenet


# Beyond this, Keras gets one batch repeated through tf.data instead of a
# NumPy array of --steps batches (224x224 at batch 128 would be 1.5 GB a side).
_KERAS_NUMPY_LIMIT_BYTES = 1 << 30


class KerasMobileNet:
    """tf.keras.applications.MobileNet(weights=None): model.fit, model.predict, batch-1 calls.

    Fit and predict are timed from the start of their first batch to the end of
    their last (a callback), so fit's per-call set-up is not charged to Keras.
    Inputs are already scaled to [-1, 1] (Keras's model has no preprocessing
    layer; ours normalises in the graph). Keras's MobileNet has no weight decay.
    """

    def __init__(self, args, lr):
        self.batch, self.steps = args.batch_size, args.steps
        size = args.image_size
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            self.model = tf.keras.applications.MobileNet(
                input_shape=(size, size, 3), alpha=args.width, include_top=True, weights=None,
                classes=args.num_classes)
        self.warnings = sorted({' '.join(str(w.message).split()) for w in caught})
        self.model.compile(optimizer=tf.keras.optimizers.SGD(learning_rate=lr, momentum=0.9,
                                                             nesterov=True),
                           loss='sparse_categorical_crossentropy')
        rng = np.random.RandomState(0)
        count = args.batch_size * args.steps
        per_image = size * size * 3 * 4
        one = rng.uniform(-1, 1, (args.batch_size, size, size, 3)).astype(np.float32)
        one_labels = rng.randint(0, args.num_classes, args.batch_size).astype(np.int32)
        if count * per_image <= _KERAS_NUMPY_LIMIT_BYTES:
            self.inputs = 'NumPy arrays of --steps batches'
            self.x = rng.uniform(-1, 1, (count, size, size, 3)).astype(np.float32)
            self.y = rng.randint(0, args.num_classes, count).astype(np.int32)
            self.fit_kwargs = dict(x=self.x, y=self.y, batch_size=args.batch_size, shuffle=False)
            self.predict_kwargs = dict(x=self.x, batch_size=args.batch_size)
        else:
            self.inputs = 'one NumPy batch repeated through tf.data (NumPy would exceed 1 GiB)'
            dataset = tf.data.Dataset.from_tensors((one, one_labels)).repeat()
            self.fit_kwargs = dict(x=dataset, steps_per_epoch=args.steps)
            self.predict_kwargs = dict(x=dataset.map(lambda x, y: x), steps=args.steps)
        self.single = one[:1]
        self.timer = _BatchTimer()

    def jit_compile(self):
        return getattr(self.model, 'jit_compile', None)

    def warm_up(self, steps):
        kwargs = dict(self.fit_kwargs)
        if 'batch_size' in kwargs:
            kwargs.update(x=self.x[:max(steps, 1) * self.batch], y=self.y[:max(steps, 1) * self.batch])
        else:
            kwargs.update(steps_per_epoch=max(steps, 1))
        self.model.fit(epochs=1, verbose=0, **kwargs)
        self.model.predict(verbose=0, **self.predict_kwargs)
        for _ in range(3):
            self.model.predict_on_batch(self.single)
            self.model(self.single, training=False)

    def fit_images_per_sec(self):
        """(images/s first batch to last, images/s of the whole fit call)."""
        start = time.perf_counter()
        self.model.fit(epochs=1, verbose=0, callbacks=[self.timer], **self.fit_kwargs)
        call = time.perf_counter() - start
        return self.steps * self.batch / self.timer.seconds(), self.steps * self.batch / call

    def predict_images_per_sec(self):
        """(images/s first batch to last, images/s of the whole predict call)."""
        start = time.perf_counter()
        self.model.predict(verbose=0, callbacks=[self.timer], **self.predict_kwargs)
        call = time.perf_counter() - start
        return self.steps * self.batch / self.timer.seconds(), self.steps * self.batch / call

    def latency_ms(self, runs):
        """(predict_on_batch, model(x, training=False)) medians for one image, in ms."""
        def median_ms(call):
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                np.asarray(call())
                times.append(time.perf_counter() - start)
            return 1000 * statistics.median(times)
        return (median_ms(lambda: self.model.predict_on_batch(self.single)),
                median_ms(lambda: self.model(self.single, training=False)))


class _BatchTimer(tf.keras.callbacks.Callback):
    """Seconds from the start of the first batch to the end of the last, of fit or predict."""

    def __init__(self):
        super().__init__()
        self.start = self.end = None

    def _begin(self, batch, logs=None):
        if batch == 0:
            self.start = time.perf_counter()

    def _end(self, batch, logs=None):
        self.end = time.perf_counter()

    on_train_batch_begin = on_predict_batch_begin = _begin
    on_train_batch_end = on_predict_batch_end = _end

    def seconds(self):
        return self.end - self.start


def apply_keras_threads(args, notes):
    """--*_op_threads for Keras too (its eager context has settings of its own)."""
    if not (args.intra_op_threads or args.inter_op_threads):
        return
    try:
        if args.intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
        if args.inter_op_threads:
            tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    except RuntimeError as e:  # the eager context already exists (e.g. called twice in-process)
        notes.append('thread settings not applied to Keras: %s' % e)


def import_torch():
    """(the torch module, '') or (None, why it cannot be measured)."""
    try:
        import torch
    except ImportError:
        return None, 'PyTorch not installed (pip install torch==2.13.0, a CPU build, to compare)'
    except OSError as e:  # a CUDA build without the NVIDIA libraries
        return None, 'PyTorch does not import: %s' % ' '.join(str(e).split())
    return torch, ''


class TorchMobileNet:
    """PyTorch training the same MobileNetV1 as ours on a fixed random batch, on the CPU.

    mobilenet.STEMS's layers at cfg's width and min_depth: convolutions without bias, batch
    norm with our epsilon and decay, ReLU6, global average pool, dropout, 1x1 logits, in the
    channels-last memory format; softmax cross-entropy with label smoothing; SGD with
    Nesterov momentum and L2 decay on the non-depthwise convolution weights, as ours.
    PyTorch pads 3x3 convolutions by 1 on every side (TensorFlow's SAME pads stride-2
    layers at the bottom right only): the same output sizes and work.
    """

    def __init__(self, torch, cfg, num_classes, batch_size, lr):
        nn = torch.nn
        self.torch, self.batch = torch, batch_size
        torch.manual_seed(0)

        def depth(d):
            return max(int(d * cfg['width']), cfg['min_depth'])

        def conv_bn(cin, cout, kernel, stride, groups=1):
            return [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                    nn.BatchNorm2d(cout, eps=cfg['batch_norm_epsilon'],
                                   momentum=1 - cfg['batch_norm_decay']),
                    nn.ReLU6(inplace=True)]

        layers, cin = [], 3
        for d in mobilenet.STEMS[cfg['stem']]:
            cout, kernel = depth(d.depth), d.kernel[0]
            if isinstance(d, mobilenet.Conv):
                layers += conv_bn(cin, cout, kernel, d.stride)
            else:
                layers += conv_bn(cin, cin, kernel, d.stride, groups=cin) + conv_bn(cin, cout, 1, 1)
            cin = cout
        layers += [nn.AdaptiveAvgPool2d(1), nn.Dropout(1 - cfg['dropout_keep_prob']),
                   nn.Conv2d(cin, num_classes, 1), nn.Flatten()]
        self.model = nn.Sequential(*layers).to(memory_format=torch.channels_last).train()
        decayed = [p for m in self.model.modules() if isinstance(m, nn.Conv2d) and m.groups == 1
                   for p in [m.weight]]
        others = [p for p in self.model.parameters() if all(p is not q for q in decayed)]
        self.optimizer = torch.optim.SGD(
            [dict(params=decayed, weight_decay=cfg['weight_decay']), dict(params=others)],
            lr=lr, momentum=cfg['momentum'], nesterov=True)
        self.loss = nn.CrossEntropyLoss(label_smoothing=cfg['label_smoothing'])
        size = cfg['image_size']
        self.x = torch.rand(batch_size, 3, size, size).contiguous(memory_format=torch.channels_last)
        self.y = torch.randint(0, num_classes, (batch_size,))

    def version(self):
        return '%s, %d threads' % (self.torch.__version__, self.torch.get_num_threads())

    def _step(self):
        self.optimizer.zero_grad(set_to_none=True)
        self.loss(self.model(self.x), self.y).backward()
        self.optimizer.step()

    def warm_up(self, steps):
        for _ in range(max(steps, 1)):
            self._step()

    def images_per_sec(self, steps):
        start = time.perf_counter()
        for _ in range(steps):
            self._step()
        return steps * self.batch / (time.perf_counter() - start)
