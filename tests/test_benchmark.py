"""benchmark.py on tiny settings: the JSON last line, the real train.py path, the FLOP formula."""
import json

import pytest

import benchmark
import mobilenet
from benchmarking import speed

# Small and quick; no timing thresholds anywhere here.
TINY = ['--width', '0.25', '--image_size', '32', '--batch_size', '8', '--steps', '2',
        '--warmup', '1', '--repeats', '1', '--latency_runs', '2', '--matmul_size', '128',
        '--matmul_iters', '2']

MEDIANS = ['train_images_per_sec', 'infer_images_per_sec', 'latency_ms', 'matmul_gflops',
           'train_gflops', 'utilisation']
KERAS_MEDIANS = ['keras_fit_images_per_sec', 'keras_predict_images_per_sec', 'keras_latency_ms']
RATIOS = ['train_vs_keras_fit', 'infer_vs_keras_predict', 'keras_latency_vs_ours',
          'train_vs_before', 'real_path_vs_synthetic']


def run(capsys, *flags):
    assert benchmark.main(TINY + list(flags)) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    return lines, json.loads(lines[-1])


def test_keras_side_by_side_and_missing_data_is_a_note(capsys, tmp_path):
    lines, summary = run(capsys, '--data_dir', str(tmp_path), '--output', str(tmp_path / 'b.json'))
    assert json.loads((tmp_path / 'b.json').read_text()) == summary
    for key in MEDIANS + KERAS_MEDIANS:
        assert summary['medians'][key] > 0, key
    for key in ['train_images_per_sec', 'matmul_gflops'] + KERAS_MEDIANS:
        assert len(summary['raw'][key]) == 1 and summary['raw'][key][0] > 0, key
    assert set(RATIOS) <= set(summary['ratios'])
    for key in RATIOS[:3]:
        assert summary['ratios'][key] > 0
    # No data: the real path is skipped, never downloaded, and says so.
    assert summary['medians']['real_path_images_per_sec'] is None
    assert summary['ratios']['real_path_vs_synthetic'] is None
    assert any('real train.py path skipped' in n for n in summary['notes'])
    assert sorted(p.name for p in tmp_path.iterdir()) == ['b.json']
    assert summary['keras_like_for_like'] and summary['keras_stem'] == 'imagenet'
    assert summary['flags']['width'] == 0.25 and summary['cpu_count'] >= 1
    assert summary['tf_version'] and summary['flops']['train_flops_per_image'] > 0
    assert any(line.startswith('training, synthetic batch') for line in lines)


def test_real_train_py_path_on_cifar_data_and_cifar_stem(capsys, tiny_cifar):
    _, summary = run(capsys, '--data_dir', str(tiny_cifar), '--skip_keras', '--stem', 'cifar')
    assert summary['medians']['real_path_images_per_sec'] > 0
    assert summary['ratios']['real_path_vs_synthetic'] > 0
    assert summary['medians']['keras_fit_images_per_sec'] is None
    assert summary['ratios']['train_vs_keras_fit'] is None
    assert summary['flags']['stem'] == 'cifar'


@pytest.mark.parametrize('width,size,stem,classes,final_depth', [
    (0.25, 32, 'imagenet', 10, 256), (1.0, 32, 'cifar', 10, 1024), (0.5, 224, 'imagenet', 1001, 512)])
def test_flops_per_image_is_three_times_two_times_the_macs(width, size, stem, classes, final_depth):
    args = benchmark.parse_args(['--width', str(width), '--image_size', str(size), '--stem', stem,
                                 '--num_classes', str(classes)])
    flops = speed.training_flops(benchmark.model_config(args), classes)
    base = sum(macs for _, _, macs in mobilenet.layer_table(width, size, mobilenet.STEMS[stem]))
    # The logits are a 1x1 conv on the pooled 1x1 map: final depth x classes multiply-adds.
    assert flops['logits_macs'] == final_depth * classes
    assert flops['train_flops_per_image'] == 3 * 2 * (base + final_depth * classes)
    assert str(flops['train_flops_per_image']) in flops['formula']


def test_every_flag_is_in_help(capsys):
    with pytest.raises(SystemExit):
        benchmark.parse_args(['--help'])
    text = capsys.readouterr().out
    for flag in ('--width', '--image_size', '--stem', '--batch_size', '--steps', '--warmup',
                 '--repeats', '--num_classes', '--data_dir', '--skip_keras', '--output', '--xla',
                 '--intra_op_threads', '--inter_op_threads', '--towers', '--onednn', '--pointwise',
                 '--profile', '--skip_torch', '--skip_real_path', '--pipeline_dir'):
        assert flag in text


@pytest.mark.parametrize('flags,message', [
    (['--stem', 'cifar', '--image_size', '0'], '--image_size must be greater than 0, got 0'),
    (['--towers', '3'], '--batch_size 128 is not a multiple of --towers 3'),
    (['--output', '{file}/sub/b.json'], '--output {file}/sub/b.json: cannot create its folder'),
    (['--output', '{tmp}'], '--output {tmp}: is a folder'),
    (['--onednn', 'yes'], "argument --onednn: invalid choice: 'yes'"),
])
def test_bad_settings_fail_before_measuring(capsys, tmp_path, monkeypatch, flags, message):
    (tmp_path / 'file').write_text('')
    names = dict(file=tmp_path / 'file', tmp=tmp_path)
    monkeypatch.setattr(speed, 'run', lambda *a, **k: pytest.fail('measured despite bad flags'))
    try:
        code = benchmark.main([f.format(**names) for f in flags])
    except SystemExit as e:
        code = e.code
    assert code == 2
    assert message.format(**names) in capsys.readouterr().err.strip().splitlines()[-1]


def test_profile_names_the_kernels_and_the_report_the_cpu(capsys, tmp_path):
    lines, summary = run(capsys, '--data_dir', str(tmp_path), '--skip_keras', '--profile', '1',
                         '--pointwise', 'matmul')
    ops = summary['profile']['ops']
    assert len(ops) == 5 and all(op['ms'] >= 0 and op['type'] and op['name'] for op in ops)
    assert [op['ms'] for op in ops] == sorted((op['ms'] for op in ops), reverse=True)
    assert summary['profile']['all_ops_ms'] >= sum(op['ms'] for op in ops)
    # The formulation beside the one before it, in the same run.
    assert summary['pointwise'] == 'matmul' and summary['medians']['train_conv2d_images_per_sec'] > 0
    assert summary['ratios']['train_vs_conv2d'] > 0
    assert summary['onednn'] in ('on', 'off') and summary['cpu'] in ('AMX', 'AVX-512', 'AVX2', 'older')
    assert any(line.startswith('CPU %s (' % summary['cpu']) for line in lines)
    assert any('five longest ops' in line for line in lines)


def test_towers_take_inference_the_peers_and_before_from_a_one_tower_process(capsys, tmp_path):
    # TensorFlow's thread pools are per process: the towers' one thread an op must not slow
    # inference or Keras, so those come from a second process in one tower.
    lines, summary = run(capsys, '--towers', '2', '--data_dir', str(tmp_path), '--skip_torch')
    assert summary['towers'] == 2
    med, ratios = summary['medians'], summary['ratios']
    for key in ('train_before_images_per_sec', 'infer_images_per_sec', 'latency_ms',
                'keras_fit_images_per_sec', 'train_conv2d_images_per_sec'):
        assert med[key] > 0, key
    assert ratios['train_vs_before'] == pytest.approx(
        med['train_images_per_sec'] / med['train_before_images_per_sec'], rel=1e-3)
    assert any(line.startswith('  one tower: repetition 1/1') for line in lines)
    assert any(n.startswith('one-tower process') and 'PyTorch skipped' in n
               for n in summary['notes'])
    assert med['torch_train_images_per_sec'] is None and ratios['train_vs_torch'] is None


def test_pytorch_trains_the_same_network_where_torch_imports(capsys, tmp_path):
    torch = pytest.importorskip('torch')  # not a dependency; measured where installed
    _, summary = run(capsys, '--data_dir', str(tmp_path), '--skip_keras')
    assert summary['medians']['torch_train_images_per_sec'] > 0
    assert summary['torch_version'].startswith(torch.__version__)


def test_the_input_pipeline_alone_is_measured_on_a_folder_dataset(capsys, tmp_path):
    from conftest import own_images
    photos = own_images(tmp_path / 'photos')
    lines, summary = run(capsys, '--pipeline_dir', str(photos), '--image_size', '40',
                         '--skip_keras', '--skip_torch', '--skip_real_path')
    assert summary['medians']['pipeline_images_per_sec'] > 0
    assert summary['ratios']['pipeline_vs_train'] == pytest.approx(
        summary['medians']['pipeline_images_per_sec'] / summary['medians']['train_images_per_sec'],
        rel=1e-3)
    assert any(line.startswith('input pipeline alone') for line in lines)
    try:
        code = benchmark.main(TINY + ['--pipeline_dir', str(tmp_path / 'none')])
    except SystemExit as e:
        code = e.code
    assert code == 2 and '--pipeline_dir %s: no such folder' % (tmp_path / 'none') in \
        capsys.readouterr().err
