#!/usr/bin/env bash
# Regenerates the tables of docs/PLANS.md: `iop plan --compare` for AlexNet,
# VGG-16 and ResNet-18 on 2, 3 and 4 Raspberry-Pi-class devices (4 GFLOP/s,
# 1 GiB each, switched network, 0.2 ms per message) at 50 Mbit/s,
# 100 Mbit/s and 1 Gbit/s. Usage: bash tools/plans.sh > /tmp/tables.md
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o /tmp/iop-plans ./cmd/iop
for model in alexnet vgg16 resnet18; do
  for bw in 50Mbps 100Mbps 1Gbps; do
    for n in 2 3 4; do
      echo "### $model, $n devices, $bw"
      echo
      echo '```'
      /tmp/iop-plans plan "$model" --devices "$n" --bandwidth "$bw" --device-memory 1GiB --compare
      echo '```'
      echo
    done
  done
done
