#!/usr/bin/env bash
# Issue 25's backbone record: MobileNetV1 as a detector's backbone at 416x416, frozen with its
# stride 8, 16 and 32 feature maps as outputs, run in every runtime a user deploys to, on the six
# photos of ../shared/published (each resized whole to 416x416): TensorFlow (the .pb), OpenCV's
# dnn (the same .pb), LiteRT (the float32 .tflite) and ONNX Runtime (the .onnx, tf2onnx). The
# weights are the backbone of the published COCO SSD-MobileNetV1 (its quantized TFLite, imported:
# width 0.75, whatever its file name says) and of the ImageNet 0.75/192 classifier.
# Prints, per runtime and output, the largest absolute difference from TensorFlow's feature map
# (ReLU6 values, 0..6; and relative to the map's largest value; OpenCV 5 through its classic
# engine), and each runtime's median latency for one 416x416 picture (30 runs after
# 3 warm-ups, as the runtime's defaults thread it on this machine).
# metrics.jsonl: one line a runtime and weights ("source": "agreement.txt").
# Usage: bash results/backbone416/run.sh (from the repository root; a few minutes on 2 cores)
set -euo pipefail
out=results/backbone416
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
grep -o -E 'avx512[a-z_0-9]*|avx2|amx[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ' > $out/cpu_flags.txt
for source in coco_ssd_mobilenet_v1_1.0_quant_2018_06_29 mobilenet_v1_0.75_192_quant; do
  $python import_weights.py ../shared/published/$source.tflite "$work/$source" > /dev/null
  $python freeze_graph.py --ckpt "$work/$source" --backbone detection --image_size 416 --onnx \
    --output "$work/frozen/$source.pb" > /dev/null
done
: > $out/metrics.jsonl
$python - "$work" ../shared/published <<'PY' | tee $out/agreement.txt
import json, os, statistics, sys, time
import numpy as np
work, photos = sys.argv[1], sys.argv[2]
os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'
import cv2, onnxruntime, tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from PIL import Image
names = ['cat.bmp', 'grace_hopper.bmp', 'parrot.jpg', 'dragonfly.bmp', 'owl.jpg', 'hot_dog.jpg']
batch = np.stack([np.asarray(Image.open(os.path.join(photos, n)).convert('RGB').resize(
    (416, 416), Image.BILINEAR), np.float32) for n in names])
print('CPU flags:', open('results/backbone416/cpu_flags.txt').read().strip())
for source in ('coco_ssd_mobilenet_v1_1.0_quant_2018_06_29', 'mobilenet_v1_0.75_192_quant'):
    stem = os.path.join(work, 'frozen', source)
    meta = json.load(open(stem + '.json'))
    outputs = [o['name'] for o in meta['outputs']]
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(open(stem + '.pb', 'rb').read())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name='')
    sess = tf.compat.v1.Session(graph=graph)
    fetch = [n + ':0' for n in outputs]
    def run_tf(x): return sess.run(fetch, {'input:0': x})
    # OpenCV 5's new engine gives a graph's last output alone; its classic engine (OpenCV 4's)
    # gives any layer's, named as the .json's outputs name them.
    net = cv2.dnn.readNetFromTensorflow(stem + '.pb', engine=cv2.dnn.ENGINE_CLASSIC)
    layers = [o['layer'] for o in meta['outputs']]
    def run_cv(x):
        net.setInput(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        return [m.transpose(0, 2, 3, 1) for m in net.forward(layers)]
    lite = Interpreter(model_path=stem + '.tflite', num_threads=os.cpu_count())
    lite.allocate_tensors()
    by_name = {d['name']: d['index'] for d in lite.get_output_details()}
    def run_lite(x):
        result = [[] for _ in outputs]
        for picture in x:
            lite.set_tensor(lite.get_input_details()[0]['index'], picture[None])
            lite.invoke()
            for i, n in enumerate(outputs):
                result[i].append(lite.get_tensor(by_name[n])[0])
        return [np.stack(r) for r in result]
    ort = onnxruntime.InferenceSession(stem + '.onnx', providers=['CPUExecutionProvider'])
    def run_ort(x): return ort.run(fetch, {'input:0': x})
    reference = run_tf(batch)
    print('\n%s (width %g): outputs %s' % (source, meta['architecture']['width'], ', '.join(
        '%s %s' % (n, 'x'.join(map(str, r.shape[1:]))) for n, r in zip(outputs, reference))))
    for runtime, run in (('TensorFlow', run_tf), ('OpenCV dnn', run_cv), ('LiteRT', run_lite),
                         ('ONNX Runtime', run_ort)):
        maps = run(batch)
        diffs = [float(np.abs(a - b).max()) for a, b in zip(maps, reference)]
        relative = max(d / float(np.abs(r).max()) for d, r in zip(diffs, reference))
        one = batch[:1]
        for _ in range(3):
            run(one)
        times = []
        for _ in range(30):
            start = time.perf_counter()
            run(one)
            times.append(time.perf_counter() - start)
        print('  %-12s max |difference| from TensorFlow: %s (at most %.1e of the largest '
              'value); median latency %.1f ms' % (runtime, ', '.join('%.1e' % d for d in diffs),
                                                  relative, 1000 * statistics.median(times)))
        with open('results/backbone416/metrics.jsonl', 'a') as f:
            f.write(json.dumps(dict(source='agreement.txt', weights=source, runtime=runtime,
                                    outputs=outputs, max_abs_difference=diffs,
                                    max_relative_difference=relative,
                                    median_latency_ms=1000 * statistics.median(times))) + '\n')
PY
