import sys, time, numpy as np, tensorflow as tf
sys.path.insert(0, '/work/main')
from pipelines import in_memory
v1 = tf.compat.v1
mode = sys.argv[1]; gap = float(sys.argv[2])
images = np.random.RandomState(0).randint(0, 255, (10000, 32, 32, 3)).astype(np.uint8)
labels = np.zeros(10000, np.int64)
with tf.Graph().as_default():
    x, y, init, feed = in_memory.input_pipeline(images, labels, 500, training=False)
    s = tf.reduce_sum(x)
    with v1.Session() as sess:
        for i in range(4):
            t = time.time(); sess.run(init, feed()); t_init = time.time() - t
            n = 0
            while True:
                try: sess.run(s); n += 1
                except tf.errors.OutOfRangeError: break
            print(mode, 'pass', i, 'init %.2f s' % t_init, n, flush=True)
            time.sleep(gap)
