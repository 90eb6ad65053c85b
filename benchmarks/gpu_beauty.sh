#!/usr/bin/env bash
# Beauty (P5's files) on one GPU: the default recipe, sequential task, at most 8 minutes of training,
# every user evaluated, SASRec and the other baselines fitted on the same splits (SASRec on the GPU).
#
# For a session that is lent a device machine (../.library/device). Once, here, in the repo root:
#   echo /.whl/ >> .git/info/exclude; echo /gpu_data/ >> .git/info/exclude
#   mkdir -p gpu_data && cp ../shared/data/p5_beauty/sequential_data.txt ../shared/data/p5_beauty/datamaps.json gpu_data/
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl datasets==5.2.0 dill multiprocess
# Then one device run, carry [".whl", "gpu_data"], command `bash benchmarks/gpu_beauty.sh`, timeout ~600 s.
# Results land in $OUT (summary.json, report.md, train_log.jsonl). Not yet run on a GPU: no device was lent to
# the session that wrote it; the same bench_quality command ran on the CPU (docs/benchmarks.md, Beauty).
set -euo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-runs/gpu}
# Into the image's environment, not --target: wheels on PYTHONPATH make dill pickle pyarrow by value.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir .whl/*.whl
python3 -m pip install -q --no-deps --no-build-isolation -e .
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
p5rec data prepare --source p5 --sequences gpu_data/sequential_data.txt --datamaps gpu_data/datamaps.json \
  --out /tmp/beauty
python3 benchmarks/bench_quality.py --data /tmp/beauty --out /tmp/bench-beauty --sequential-only \
  --set train.max_minutes=8 2>&1 | tee "$OUT/bench.log"
cp /tmp/bench-beauty/summary.json /tmp/bench-beauty/eval/report.md /tmp/bench-beauty/model-train/train_log.jsonl "$OUT/"
