#!/usr/bin/env bash
# Independent vs minibatch-OT coupling with equal training (docs/benchmarks.md): for each data
# set, trains the paper's 2-D model (MLP 4x512) both ways at batch 1024, then reports training
# steps per second, dopri5 NFE (tolerance 1e-5) and the straightness of 1000 sampled paths.
#
#   scripts/couplings.sh [STEPS] [OUT]     (defaults: 2000 steps, runs/couplings)
set -euo pipefail
steps=${1:-2000}
out=${2:-runs/couplings}
fm=${FM:-target/release/fm}
printf '%-13s %-12s %10s %8s %12s %12s\n' data coupling steps/s nfe straightness nll_nats
for data in 8gaussians checkerboard; do
  for coupling in independent ot; do
    run="$out/$data-$coupling"
    rm -rf "$run"
    train=$("$fm" train --data "$data" --coupling "$coupling" --steps "$steps" --batch-size 1024 \
      --warmup 100 --cosine --ema 0.99 --checkpoint-every "$steps" --out "$run" --json | tail -1)
    sample=$("$fm" sample --run "$run" --n 1000 --save-trajectories "$run/paths.npy" --json | tail -1)
    nll=$("$fm" nll --run "$run" --n 2000 --json | tail -1)
    python3 - "$data" "$coupling" "$train" "$sample" "$nll" <<'PY'
import json, sys
data, coupling, train, sample, nll = sys.argv[1], sys.argv[2], *map(json.loads, sys.argv[3:])
print(f"{data:<13} {coupling:<12} {train['steps_per_s']:10.2f} {sample['nfe']:8.0f} "
      f"{sample['straightness']:12.4f} {nll['nll_nats']:12.4f}")
PY
  done
done
