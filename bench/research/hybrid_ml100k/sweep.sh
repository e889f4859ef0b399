#!/bin/bash
# usage: sweep.sh "tag|args" ... ; runs 2 at a time, niced, prints summary lines
export KGREC_HOME=/tmp/kgh OMP_WAIT_POLICY=PASSIVE
cd /work/notes/hybrid-proto
S='import json,sys
for l in sys.stdin:
  r=json.loads(l); print(r["tag"],"|", r["val_ndcg"], r["test_ndcg"], r["test_recall"], r["info"].get("best_epoch"), r["info"].get("epochs"), r["info"].get("time_to_best"), r["wall_s"], flush=True)'
run() { timeout ${TO:-280} nice -n 10 /tmp/venvtest/bin/python proto.py --tag "$1" $2 2>>scratch/err.log | python3 -c "$S"; }
while [ $# -gt 0 ]; do
  a="$1"; shift
  run "${a%%|*}" "${a#*|}" &
  if [ $# -gt 0 ]; then b="$1"; shift; run "${b%%|*}" "${b#*|}" & fi
  wait
done
