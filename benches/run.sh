#!/usr/bin/env bash
# Runs both benchmarks: the layer micro-benchmark (divan), then the end-to-end load script.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p rack-gateway-benches --bench layers
benches/load.sh
