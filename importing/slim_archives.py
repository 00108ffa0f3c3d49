"""TF-Slim's published MobileNetV1 ImageNet checkpoints (research/slim/nets/mobilenet_v1.md):
downloaded from their official URL into a cache folder once, extracted all or nothing, checked,
and read as an import (their names are already slim's; the weight averages are taken where the
checkpoint keeps them, as slim's evaluation restores)."""
import http.client
import os
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request

import tqdm

from checkpoints import reading
from importing import imported
import mobilenet
from preflight import errors

# slim's table: mobilenet_v1_{width}_{size}[_quant].tgz, float and quantization-aware trained.
NAME = re.compile(r'^mobilenet_v1_(1\.0|0\.75|0\.5|0\.25)_(224|192|160|128)(_quant)?$')
NAMES = 'mobilenet_v1_{1.0,0.75,0.5,0.25}_{224,192,160,128}[_quant]'


def settings_of(name):
    match = NAME.match(name)
    if not match:
        raise errors.UsageError('slim:%s: not one of the published checkpoints; expected slim:%s'
                                % (name, NAMES))
    return imported.default_architecture(width=float(match.group(1)),
                                         image_size=int(match.group(2)))


def read(name, cache_dir, url):
    """The Imported of slim's checkpoint `name`, from cache_dir/name/ (downloaded from `url`,
    '{name}' in it replaced, when not there yet)."""
    settings = settings_of(name)
    prefix = os.path.join(cache_dir, name, name + '.ckpt')
    expected = imported.expected_shapes(settings, 1001)
    if not os.path.exists(prefix + '.index'):
        archive = os.path.join(cache_dir, name + '.tgz')
        downloaded = not os.path.isfile(archive)
        if downloaded:
            download(url.format(name=name), archive)
        try:
            extract(archive, name, os.path.join(cache_dir, name), expected)
        except errors.ModelError as e:
            if downloaded:  # not the archive its name says: not kept to fail again
                os.remove(archive)
                raise errors.ModelError('%s (downloaded from %s; removed)'
                                        % (e, url.format(name=name))) from e
            raise errors.ModelError('%s; delete it to download it again' % e) from e
        os.remove(archive)  # what it held is checked and in place
    tensors = checked(prefix, expected)
    layers = []
    for layer in mobilenet.end_point_names():
        scope = 'MobilenetV1/%s/' % layer
        kernel = tensors[scope + ('depthwise_weights' if 'depthwise' in layer else 'weights')]
        layers.append(imported.Layer(kernel=kernel, batch_norm={
            key: tensors[scope + 'BatchNorm/' + key]
            for key in ('gamma', 'beta', 'moving_mean', 'moving_variance')}))
    logits = (tensors['MobilenetV1/Logits/Conv2d_1c_1x1/weights'],
              tensors['MobilenetV1/Logits/Conv2d_1c_1x1/biases'])
    return imported.Imported(layers=layers, logits=logits, settings=settings,
                             source="TF-Slim's %s (%s, cached in %s)" % (
                                 name, url.format(name=name), os.path.dirname(prefix)))


def download(url, archive):
    """`url` to `archive` (through archive.part, so a broken download is never taken for one);
    UsageError naming the URL and the manual command when there is no network."""
    try:
        os.makedirs(os.path.dirname(archive), exist_ok=True)
        # Its own partial file: two imports of one name download side by side.
        handle, partial = tempfile.mkstemp(prefix=os.path.basename(archive) + '.part-',
                                           dir=os.path.dirname(archive))
        os.close(handle)
    except OSError as e:
        raise errors.UsageError('--cache_dir %s: cannot write (%s)' % (
            os.path.dirname(archive), e.strerror or e)) from e
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, 'wb') as out:
            total = int(response.headers.get('Content-Length') or 0) or None
            with tqdm.tqdm(total=total, unit='B', unit_scale=True, desc=os.path.basename(archive),
                           leave=False, disable=not sys.stderr.isatty()) as bar:
                while True:
                    chunk = response.read(1 << 20)
                    if not chunk:
                        break
                    out.write(chunk)
                    bar.update(len(chunk))
        if total is not None and os.path.getsize(partial) != total:
            raise errors.UsageError('%s: the download stopped at %d of %d bytes; run again'
                                    % (url, os.path.getsize(partial), total))
        os.replace(partial, archive)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        reason = getattr(e, 'reason', None) or getattr(e, 'strerror', None) or e
        raise errors.UsageError(
            'cannot download %s (%s); fetch it by hand (curl -L -o %s %s) and run this again'
            % (url, reason, archive, url)) from e
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def extract(archive, name, folder, expected):
    """The checkpoint files of `archive` (NAME.ckpt.index, NAME.ckpt.data-*) into `folder`, all or
    nothing, and only once they read back with every variable `expected`."""
    staging = tempfile.mkdtemp(prefix='.extract-', dir=os.path.dirname(folder))
    try:
        try:
            with tarfile.open(archive) as tar:
                members = [m for m in tar.getmembers() if m.isfile() and re.fullmatch(
                    re.escape(name) + r'\.ckpt\.(index|data-\d+-of-\d+)', os.path.basename(m.name))]
                if not any(m.name.endswith('.index') for m in members):
                    raise errors.ModelError('%s: holds no %s.ckpt.index; not TF-Slim\'s archive of '
                                            '%s' % (archive, name, name))
                for member in members:  # by base name: no path of the archive is followed
                    with tar.extractfile(member) as source, \
                            open(os.path.join(staging, os.path.basename(member.name)), 'wb') as out:
                        shutil.copyfileobj(source, out)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise errors.ModelError('%s: a damaged archive (%s)' % (
                archive, ' '.join(str(e).split()))) from e
        checked(os.path.join(staging, name + '.ckpt'), expected, archive)
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        os.rename(staging, folder)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging)


def checked(prefix, expected, source=None):
    """{slim name: array} of every `expected` variable (its moving average where the checkpoint
    keeps one); ModelError naming the first missing or of another shape."""
    source = source or prefix
    reader, shapes = reading.open_checkpoint(prefix)
    tensors = {}
    for name, shape in expected.items():
        stored = name + '/ExponentialMovingAverage' if name + '/ExponentialMovingAverage' in \
            shapes else name
        if stored not in shapes:
            raise errors.ModelError('%s: has no %s; not the checkpoint its name says' % (source, name))
        if list(shapes[stored]) != list(shape):
            raise errors.ModelError('%s: %s has shape %s, MobileNetV1 of that width %s'
                                    % (source, name, list(shapes[stored]), list(shape)))
        try:
            tensors[name] = reader.get_tensor(stored)
        except Exception as e:  # a truncated .data file raises what its reader happens to
            raise errors.ModelError('%s: cannot read %s (%s)' % (source, name,
                                                                 reading.first_line(e))) from e
    return tensors
