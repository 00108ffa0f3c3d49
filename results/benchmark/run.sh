#!/usr/bin/env bash
# The speed records of issue 12: benchmark.py on both CPU kernel families, both stems.
# On an AVX-512 machine, TF_ENABLE_ONEDNN_OPTS=0 runs the Eigen kernels that CPUs without
# AVX-512 run by default, and ONEDNN_MAX_CPU_ISA=AVX2 runs oneDNN's AVX2 kernels.
# Usage: bash results/benchmark/run.sh [one-tower] [two-towers]   (from the repository root;
# both by default, about 25 minutes on 2 cores)
set -euo pipefail
out=results/benchmark
python=${PYTHON:-python3}
grep -o -E 'avx512[a-z_0-9]*|avx2|amx[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ' > $out/cpu_flags.txt
echo >> $out/cpu_flags.txt
bench() {  # name, environment, flags
  local name=$1 environment=$2; shift 2
  echo "\$ $environment python3 benchmark.py $*" > $out/$name.txt
  env $environment $python benchmark.py --profile 3 --output $out/$name.json "$@" 2>&1 \
    | grep -v -E '^I0000|^WARNING: All log messages' >> $out/$name.txt
}
parts=${*:-one-tower two-towers}
if [[ $parts == *one-tower* ]]; then for stem in imagenet cifar; do
  bench ${stem}_stem_32 "" --stem $stem
  bench ${stem}_stem_32_eigen "TF_ENABLE_ONEDNN_OPTS=0" --stem $stem
  bench ${stem}_stem_32_onednn_avx2 "ONEDNN_MAX_CPU_ISA=AVX2" --stem $stem --onednn on
done; fi
if [[ $parts == *two-towers* ]]; then for environment in "" "TF_ENABLE_ONEDNN_OPTS=0"; do
  bench cifar_stem_32_towers2${environment:+_eigen} "$environment" --stem cifar --towers 2 --skip_keras
  bench imagenet_stem_32_towers2${environment:+_eigen} "$environment" --stem imagenet --towers 2 --skip_keras
done; fi
