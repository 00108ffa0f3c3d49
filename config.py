"""Every hyperparameter in one place.

Edit DEFAULTS or a preset for an experiment; any value can also be overridden
on the command line (`python3 train.py --lr 0.05`), and `train.py --help`
shows the comment beside each name here as that flag's help: every value needs
one, and a comment continued on the next line, indented past the names, is read
whole. A run saves the resolved values to `<ckpt_dir>/config.json`.

Presets change a few values on top of DEFAULTS (`--preset NAME`):
  seed   the 2019 recipe this project replaces: Adam, lr 1e-3, batch 16, lr x0.99
         per epoch, no augmentation.
  cifar  the recommended CIFAR-10 recipe (the default): Nesterov SGD, warm-up then
         linear decay, label smoothing, crop and flip; 30 epochs.
  fast   the same recipe for 52 epochs, with weight averaging, scored (with
         flip TTA) every 4 epochs: aimed at 90% test accuracy within an hour on a 2-core
         CPU (results/ has the record).
  best   the same for 200 epochs, scored every 5: for the highest accuracy at width 1.0,
         on a GPU or over several sessions on a CPU (about 3.5 hours on 2 cores).
  yolo   the detector (--task detect picks it): YOLOv3 on MobileNetV1 at 416, Adam with
         cosine decay, batch 8, the head alone for 5 epochs then all layers with batch norm
         on the checkpoint's statistics; 60 epochs, mAP scored every 5.
"""

DEFAULTS = dict(
    # Data
    dataset='cifar10',            # 'cifar10' (python pickles), 'folder' (class subfolders of images), 'tfrecord' (TF-Slim's shards); detection: 'voc', 'coco', 'yolo'; see datasets/
    data_dir='cifar',             # the dataset's folder; CIFAR-10 is downloaded there if absent
    cifar_archive='',             # local cifar-10-python.tar.gz to extract instead of downloading
    val_size=0,                   # training images held out as a validation split (0: none; a folder's validation/ or val/ is used as is)
    test_size=0,                  # folder datasets without test/: training images held out as the test split (0: none)
    augment=True,                 # random crop and horizontal flip when training (at 32x32 a 4-pixel padded crop; else slim's inception crop)
    cutout=0,                     # with augment: mean-colour square of this side, of 32x32, at a random centre (0: off)
    image_size=32,                # input resolution: own images are decoded into memory at 32, streamed and inception-cropped at other sizes
    normalization='cifar',        # 'cifar': per-channel mean/std; 'inception': [-1, 1] as ImageNet checkpoints

    # Model
    width=1.0,                    # width multiplier (slim's depth_multiplier): 1.0, 0.75, 0.5, 0.25
    min_depth=8,                  # no layer gets fewer channels than this, whatever the width
    stem='cifar',                 # 'cifar': stride-1 first conv (2x2 final map on 32x32); 'imagenet': stride 2
    use_explicit_padding=False,   # pad explicitly then VALID convs, so every runtime pads the same
    dropout_keep_prob=0.999,      # keep probability of dropout before the logits
    init_stddev=0.0,              # truncated-normal stddev of conv weights (slim: 0.09); 0: He init
    batch_norm_decay=0.99,        # moving-average decay of batch-norm statistics (slim: 0.9997)
    batch_norm_epsilon=0.001,     # batch-norm epsilon

    # Optimisation
    optimizer='nesterov',         # 'adam', 'momentum' or 'nesterov' (SGD with Nesterov momentum)
    lr=0.2,                       # base learning rate, times the schedule (and progress/warmup_epochs in warm-up)
    momentum=0.9,                 # momentum of SGD ('momentum', 'nesterov')
    lr_schedule='linear',         # 'exponential' (x lr_decay per epoch), 'step', 'cosine' or 'linear' (to 0)
    lr_decay=0.99,                # 'exponential': factor per epoch
    lr_step_epochs=30,            # 'step': epochs between drops
    lr_step_factor=0.1,           # 'step': factor at each drop
    warmup_epochs=2.0,            # linear warm-up from 0 over these epochs (0: none)
    weight_decay=5e-4,            # L2 on conv weights, as slim: decay * sum(w**2) / 2
    regularize_depthwise=False,   # also L2-decay the depthwise filters (slim: no)
    label_smoothing=0.1,          # mix one-hot targets with the uniform distribution by this much
    class_weights='',             # 'balanced': weigh each image's loss by images / (classes x images of its class); '': all 1
    batch_size=128,               # training batch size: the global batch, shared out equally between the workers TF_CONFIG lists (and their GPUs)
    onednn='auto',                # CPU kernels: 'on' oneDNN's, 'off' TensorFlow's own (Eigen); 'auto' the faster for this CPU (preflight/cpu_kernels.py)
    pointwise='auto',             # 1x1 convolutions in training as 'conv2d' or 'matmul' (same variables and numbers); 'auto': matmul
    towers='auto',                # network copies (slim's clones) that split each batch, run side by side; 'auto': 2 on a CPU of 2+ cores if each gets 32+ images, else 1 (preflight/cpu_kernels.py)
    xla=False,                    # XLA JIT auto-clustering of the graph on GPUs (TensorFlow ignores it on a CPU)
    mixed_precision=False,        # float16 on GPUs with dynamic loss scaling (graph rewrite); no effect on CPU
    epochs=30,                    # epochs to train (a resumed run stops at the same total)
    steps_per_epoch=0,            # steps in an epoch (0: one pass over the training set)
    worker_timeout=300.0,         # with TF_CONFIG: seconds a step (and the start) waits for every worker before stopping with the lost one's name

    # Checkpoints and evaluation
    ckpt_dir='ckpt',              # checkpoints, metrics.jsonl, config.json and TensorBoard events
    keep_checkpoints=3,           # how many of the latest checkpoints to keep, interrupt saves included (best/ is kept too)
    load_pretrain=False,          # start a new run from --pretrain_path (matching names and shapes only)
    pretrain_path='pretrained',   # checkpoint prefix or folder for --load_pretrain 1 (default: the shipped weights)
    checkpoint_exclude_scopes='', # with --load_pretrain: comma-separated scopes not restored (whole name parts), e.g. MobilenetV1/Logits (slim's flag)
    trainable_scopes='',          # comma-separated scopes trained (whole name parts: MobilenetV1/Conv2d_1 is layer 1), the rest frozen with batch norm on its moving statistics ('': all; slim's flag)
    freeze_batch_norm=False,      # fine-tuning: batch norm of every layer of MobilenetV1 normalises with the checkpoint's moving statistics and updates none, while the weights (gamma, beta too) train (Keras's advice); a detector's new head keeps learning its own
    eval_batch_size=500,          # batch size when scoring the test and validation sets
    eval_every=1,                 # score (and update best/) every N epochs and after the last
    eval_flip_tta=False,          # also report accuracy averaged over each image and its mirror image
    ema_decay=0.0,                # evaluate and export an exponential moving average of the weights (0: off)
    seed=0,                       # seed of the graph, shuffling and the validation split

    # Detection (--task detect: YOLOv3 on the MobileNetV1 backbone)
    task='classify',              # 'classify' (MobileNetV1's classifier) or 'detect' (YOLOv3's head on its end points; --dataset voc, coco or yolo)
    detect_end_points='Conv2d_5_pointwise,Conv2d_11_pointwise,Conv2d_13_pointwise',  # the backbone's maps the head reads, finest first (strides 8, 16, 32: the MobileNet-YOLOv3 ports')
    head='yolov3',                # 'yolov3': YOLOv3's convolutions; 'lite': each 3x3 made depthwise-separable, for devices
    head_depth=256,               # the head's block depth at the deepest map (YOLOv3: 512), halved at each finer one
    anchors='yolov3',             # 'yolov3' (its nine COCO anchors at 416), 'kmeans' (IoU k-means of the training boxes, saved in config.json) or 'w,h w,h ...' in pixels
    ignore_threshold=0.5,         # objectness: predictions overlapping a true box by more IoU than this are not pushed to 0 (YOLOv3's)
    box_loss='giou',              # 'giou', 'ciou' or 'yolov3' (its centre cross-entropy and log-size squared error)
    freeze_backbone_epochs=0,     # train the head alone for this many first epochs (MobilenetV1's weights get no update; its batch-norm statistics do unless --freeze_batch_norm 1), then all layers
    multi_scale='',               # 'MIN,MAX': each training batch at a random size in that range, multiples of 32 (e.g. 320,608); '': --image_size
    max_boxes=100,                # boxes kept per training image (more are dropped, largest first kept)
    score_threshold=0.005,        # scoring: detections below this score are not counted (low, as mAP wants the whole curve)
    iou_threshold=0.45,           # non-max suppression: a box overlapping a better one of its class by more IoU is dropped
    max_detections=100,           # detections kept per image (COCO scores 100)
)

PRESETS = dict(
    seed=dict(optimizer='adam', lr=1e-3, batch_size=16, lr_schedule='exponential', lr_decay=0.99,
              warmup_epochs=0.0, augment=False, label_smoothing=0.0, weight_decay=4e-5, epochs=20),
    cifar=dict(),
    fast=dict(epochs=52, ema_decay=0.999, eval_flip_tta=True, eval_every=4),
    best=dict(epochs=200, ema_decay=0.999, eval_flip_tta=True, eval_every=5),
    yolo=dict(task='detect', dataset='voc', data_dir='voc', image_size=416, stem='imagenet',
              normalization='inception', optimizer='adam', lr=1e-3, lr_schedule='cosine',
              warmup_epochs=1.0, batch_size=8, eval_batch_size=8, epochs=60, eval_every=5,
              label_smoothing=0.0, weight_decay=5e-4, freeze_backbone_epochs=5,
              freeze_batch_norm=True, dropout_keep_prob=1.0),
)

# The preset of each task when --preset is not given.
DEFAULT_PRESETS = dict(classify='cifar', detect='yolo')

# The datasets --dataset names: the classifier's (datasets/factory.py), the detector's layouts
# (datasets/detections.py).
CLASSIFICATION_DATASETS = ('cifar10', 'folder', 'tfrecord')
DETECTION_DATASETS = ('voc', 'coco', 'yolo')
DATASETS = CLASSIFICATION_DATASETS + DETECTION_DATASETS

# The values a frozen graph or TFLite model keeps in its metadata, and the flags that describe a
# checkpoint saved without its config.json.
ARCHITECTURE_KEYS = ('width', 'min_depth', 'stem', 'use_explicit_padding', 'image_size',
                     'normalization')

# What a run trained on and how its splits were made: evaluate.py and freeze_graph.py take these
# from the run's config.json unless their flags say otherwise.
DATA_KEYS = ('dataset', 'data_dir', 'cifar_archive', 'val_size', 'test_size', 'seed')
