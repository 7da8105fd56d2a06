#!/bin/sh
# Re-run every measurement behind docs/benchmarks.md, then regenerate the report.
# Data and kNN caches go to $FCBENCH (default /tmp/fcbench), results to benchmarks/results/.
# Takes hours on 2 cores (exact kNN, 1.74M and 5.21M runs); run single lines to refresh one number.
set -eu
D=${FCBENCH:-/tmp/fcbench}
mkdir -p "$D/cache"
export FACECLUST_PROGRESS=0
B="python benchmarks/bench_scale.py --cache $D/cache"

python benchmarks/calibrate_hist.py
# MS1M part1/3/9 sizes (and two smaller points for the scaling plot); synth streams to disk
for spec in "q36k 36500 536" "q146k 146003 2143" "part1 584013 8573" "part3 1740301 25719" "part9 5206761 77157"; do
  set -- $spec
  [ -f "$D/$1.npy" ] || /usr/bin/time -v faceclust synth --n "$2" --ids "$3" --seed 0 --out "$D/$1" 2> "$D/synth_$1.log"
done
python benchmarks/bench_metrics_scale.py --gt "$D/part9.meta"
$B --data "$D/q36k" --index ivf   # default nlist/nprobe (1528/128)
$B --data "$D/q146k" --index flat
$B --data "$D/q146k" --index ivf --nlist 4096 --nprobe 24
$B --data "$D/q146k" --index hnsw
$B --data "$D/part1" --index ivf --nlist 4096 --nprobe 24
$B --data "$D/part1" --index ivf --nlist 4096 --nprobe 24 --recall-sample 0 --tag scale_part1_ivf_cached
$B --data "$D/part1" --index ivf --nlist 4096 --nprobe 24 --recall-sample 0 --max-links 20 --tag scale_part1_ivf_cap20_cached
$B --data "$D/part1" --index flat          # ~30 min on an idle 2-core machine (not in the committed results)
$B --data "$D/part3" --index ivf --nlist 4096 --nprobe 16   # not in the committed results
$B --data "$D/part9" --index ivf --nlist 4096 --nprobe 16   # not in the committed results
faceclust bench --report docs
