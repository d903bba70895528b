#!/bin/sh
# kdzoo's speed on one GPU: the RepDistiller-style baseline, kdzoo eager in fp32 (--amp none --no-channels-last),
# kdzoo with the GPU defaults (bf16 autocast, channels_last, fused SGD), the same compiled, and the compute floor,
# for KD and CRD on resnet32x4 -> resnet8x4 and wrn_40_2 -> wrn_16_2, CIFAR-100-sized batches (64 x 3 x 32 x 32,
# 100 classes, CRD's memory bank with 4096 negatives). About 6-8 minutes on one GPU, compilation included.
#
#     sh benchmarks/gpu.sh             # on the GPU machine
#     DRY=--dry sh benchmarks/gpu.sh   # a tiny version on any device (checks the script)
set -e
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python}
DEVICE=${DEVICE:-cuda}
for pair in "resnet32x4 resnet8x4" "wrn_40_2 wrn_16_2"; do
    set -- $pair
    for method in kd crd; do
        echo "== $1 -> $2, $method"
        $PYTHON speed.py --device "$DEVICE" --teacher "$1" --student "$2" --method "$method" --batches 50 \
            --rounds 3 --variants baseline kdzoo-fp32 kdzoo compiled floor ${DRY:-}
    done
done
