#!/usr/bin/env bash
# The speed records of issue 12: benchmark.py on both CPU kernel families, both stems, with the
# towers chosen automatically (2 on 2 cores) and, with `one-tower`, in one tower.
# On an AVX-512 machine, TF_ENABLE_ONEDNN_OPTS=0 runs the Eigen kernels that CPUs without
# AVX-512 run by default, and ONEDNN_MAX_CPU_ISA=AVX2 runs oneDNN's AVX2 kernels.
# PyTorch is measured where torch imports (pip install torch==2.13.0, a CPU build).
# Usage: bash results/benchmark/run.sh [auto] [one-tower]   (from the repository root;
# auto by default, about 35 minutes on 2 cores; one-tower about 25 more). Run nothing else
# meanwhile: the machine's noise is the records' noise.
set -euo pipefail
out=results/benchmark
python=${PYTHON:-python3}
grep -o -E 'avx512[a-z_0-9]*|avx2|amx[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ' > $out/cpu_flags.txt
echo >> $out/cpu_flags.txt
bench() {  # name, environment, flags
  local name=$1 environment=$2; shift 2
  echo "\$ $environment python3 benchmark.py $*" > $out/$name.txt
  env $environment $python benchmark.py --profile 3 --output $out/$name.json "$@" 2>&1 \
    | grep -v -E '^I0000|^W0000|^WARNING: All log messages' >> $out/$name.txt
}
parts=${*:-auto}
for stem in imagenet cifar; do
  if [[ $parts == *auto* ]]; then
    bench ${stem}_stem_32 "" --stem $stem
    bench ${stem}_stem_32_eigen "TF_ENABLE_ONEDNN_OPTS=0" --stem $stem
    bench ${stem}_stem_32_onednn_avx2 "ONEDNN_MAX_CPU_ISA=AVX2" --stem $stem --onednn on
  fi
  if [[ $parts == *one-tower* ]]; then
    bench ${stem}_stem_32_towers1 "" --stem $stem --towers 1
    bench ${stem}_stem_32_towers1_eigen "TF_ENABLE_ONEDNN_OPTS=0" --stem $stem --towers 1
    bench ${stem}_stem_32_towers1_onednn_avx2 "ONEDNN_MAX_CPU_ISA=AVX2" --stem $stem --towers 1 --onednn on
  fi
done
