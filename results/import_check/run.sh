#!/usr/bin/env bash
# Issue 25's import record: each source of ../shared/published imported by import_weights.py,
# then the import (as predict.py and evaluate.py load it) against the source in its own runtime
# on the six photos there, each resized whole to the model's input (bilinear, uint8 pixels, as
# the README there made its reference table): top-1 of each, and the largest difference of any
# class's probability.
#   TFLite, quantized: the three ImageNet classifiers (uint8 weights, batch norm folded) against
#     the TFLite interpreter; the COCO SSD's backbone (its Conv2d_13_pointwise map, ReLU6 values)
#   TFLite, float: the 0.5/160 import frozen again by freeze_graph.py (float32 .tflite), imported
#     back, against the interpreter
#   Keras: keras.applications.MobileNet(alpha=0.5, 160x160) given the real 0.5/160 weights (its
#     1000 classes: the background row dropped), saved as .h5 as Keras caches ImageNet's, imported,
#     against Keras (no network here for Keras's own ImageNet file); the labels file of 1001 names
#     given as it is, its background line dropped for Keras's 1000 classes
# TF-Slim's archives need the network; tests/test_import_weights.py imports one offline.
# metrics.jsonl: the JSON line of each import ("source": "imports.txt"), then one line a case of
# the six photos ("source": "six_photos.md").
# Usage: bash results/import_check/run.sh (from the repository root; a few minutes on 2 cores)
set -euo pipefail
out=results/import_check
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
published=../shared/published
grep -o -E 'avx512[a-z_0-9]*|avx2|amx[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ' > $out/cpu_flags.txt
: > $out/imports.txt
import() {  # source, prefix
  echo "\$ python3 import_weights.py $*" | sed "s#$work#WORK#g" >> $out/imports.txt
  $python import_weights.py "$@" 2>&1 | grep -v '^INFO' | sed "s#$work#WORK#g" >> $out/imports.txt
}
for m in 0.25_128 0.5_160 0.75_192; do
  import $published/mobilenet_v1_${m}_quant.tflite "$work/q$m" --labels $published/imagenet_labels.txt
done
import $published/coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.tflite "$work/ssd"
$python freeze_graph.py --ckpt "$work/q0.5_160" --output "$work/float/m050_160.pb" > /dev/null
import "$work/float/m050_160.tflite" "$work/float_import"
$python - "$work" <<'PY' 2>&1 | grep -v -E '^(WARNING|I0000|W0000)'
import os, sys
sys.path.insert(0, '.')
import keras, numpy as np, tensorflow as tf
from checkpoints import reading
work = sys.argv[1]
model = keras.applications.MobileNet(alpha=0.5, input_shape=(160, 160, 3), weights=None)
reader = tf.train.load_checkpoint(os.path.join(work, 'q0.5_160'))
def get(name): return reader.get_tensor('MobilenetV1/' + name)
layers = ['Conv2d_0'] + ['Conv2d_%d_%s' % (i, k) for i in range(1, 14) for k in ('depthwise', 'pointwise')]
keras_names = ['conv1'] + ['conv_%s_%d' % (k, i) for i in range(1, 14) for k in ('dw', 'pw')]
for slim, name in zip(layers, keras_names):
    model.get_layer(name).set_weights([get(slim + ('/depthwise_weights' if 'depthwise' in slim else '/weights'))])
    model.get_layer(name + '_bn').set_weights([get(slim + '/BatchNorm/' + k) for k in ('gamma', 'beta', 'moving_mean', 'moving_variance')])
model.get_layer('conv_preds').set_weights([get('Logits/Conv2d_1c_1x1/weights')[..., 1:], get('Logits/Conv2d_1c_1x1/biases')[1:]])
import h5py
from keras.src.legacy.saving import legacy_h5_format
with h5py.File(os.path.join(work, 'mobilenet_5_0_160_tf.h5'), 'w') as f:
    legacy_h5_format.save_weights_to_hdf5_group(f, model)
PY
import "$work/mobilenet_5_0_160_tf.h5" "$work/keras" --labels $published/imagenet_labels.txt
grep -h '^{' $out/imports.txt | $python -c "
import json, sys
for line in sys.stdin:
    print(json.dumps(dict(json.loads(line), source='imports.txt')))" > $out/metrics.jsonl
$python - "$work" $published <<'PY' 2>&1 | grep -v -E '^(WARNING|I0000|W0000|INFO)' | tee $out/six_photos.md
import json, os, sys
sys.path.insert(0, '.')
import numpy as np
from PIL import Image
from ai_edge_litert.interpreter import Interpreter
from deployment import models
work, published = sys.argv[1:]
photos = ['cat.bmp', 'grace_hopper.bmp', 'parrot.jpg', 'dragonfly.bmp', 'owl.jpg', 'hot_dog.jpg']
labels = open(os.path.join(published, 'imagenet_labels.txt')).read().splitlines()
print('CPU flags:', open('results/import_check/cpu_flags.txt').read().strip(), '\n')
def pictures(size):
    return np.stack([np.asarray(Image.open(os.path.join(published, p)).convert('RGB').resize(
        (size, size), Image.BILINEAR), np.uint8) for p in photos])
def interpreter(path):
    it = Interpreter(model_path=path)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    def run(batch):
        rows = []
        for picture in batch:
            x = picture[None].astype(inp['dtype']) if inp['dtype'] == np.uint8 else \
                picture[None].astype(np.float32)
            it.set_tensor(inp['index'], x)
            it.invoke()
            y = it.get_tensor(out['index']).astype(np.float32)
            scale, zero = out['quantization']
            rows.append((y - zero) * scale if out['dtype'] == np.uint8 else y)
        return np.concatenate(rows)
    return run
def keras_model(path):
    import keras
    model = keras.applications.MobileNet(alpha=0.5, input_shape=(160, 160, 3), weights=None)
    model.load_weights(path)
    return lambda batch: model.predict(batch.astype(np.float32) / 127.5 - 1, verbose=0)
cases = [('0.25/128 quantized TFLite', 'q0.25_128', interpreter(os.path.join(published, 'mobilenet_v1_0.25_128_quant.tflite')), 128, 0),
         ('0.5/160 quantized TFLite', 'q0.5_160', interpreter(os.path.join(published, 'mobilenet_v1_0.5_160_quant.tflite')), 160, 0),
         ('0.75/192 quantized TFLite', 'q0.75_192', interpreter(os.path.join(published, 'mobilenet_v1_0.75_192_quant.tflite')), 192, 0),
         ('0.5/160 float TFLite (freeze_graph.py)', 'float_import', interpreter(os.path.join(work, 'float', 'm050_160.tflite')), 160, 0),
         ('0.5/160 Keras .h5', 'keras', keras_model(os.path.join(work, 'mobilenet_5_0_160_tf.h5')), 160, 1)]
print('| source | photo | source top-1 | import top-1 | max probability difference |')
print('|---|---|---|---|---|')
summary = []
for title, prefix, run, size, offset in cases:
    batch = pictures(size)
    source = run(batch)
    mine = models.load_model(os.path.join(work, prefix)).predict(batch.astype(np.float32))
    agree = 0
    for photo, a, b in zip(photos, source, mine):
        ia, ib = int(a.argmax()), int(b.argmax())
        agree += ia == ib
        print('| %s | %s | %d %s (%.3f) | %d %s (%.3f) | %.1e |' % (
            title, photo, ia + offset, labels[ia + offset], a[ia], ib + offset, labels[ib + offset], b[ib],
            np.abs(a - b).max()))
    summary.append('%s: top-1 agrees on %d of 6, probabilities within %.1e' % (title, agree, np.abs(source - mine).max()))
    with open('results/import_check/metrics.jsonl', 'a') as f:
        f.write(json.dumps(dict(source='six_photos.md', case=title, photos=6, top1_agree=agree,
                                max_probability_difference=float(np.abs(source - mine).max()))) + '\n')
print()
for line in summary:
    print('- ' + line)
PY
grep -h 'Checked against' $out/imports.txt | sed 's/^/- import check (probe pictures): /' | tee -a $out/six_photos.md
