# Sourced by a record's run.sh (from the repository root): strict bash, $python (PYTHON, or
# python3), and the CIFAR-10 JPEGs of ../shared/cifar10/cifar10-jpeg.tar.xz as class folders
# (train/, test/) in a temporary folder, $work, removed when the script ends.
set -euo pipefail
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xJf ../shared/cifar10/cifar10-jpeg.tar.xz -C "$work"
