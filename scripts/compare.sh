#!/usr/bin/env bash
# Trains the paper's 2-D model (MLP 4x512, Adam 1e-3 with 100 warmup steps and cosine decay,
# EMA 0.99, batch 1024) once per variant on each data set with equal steps, then reports training
# steps per second, dopri5 NFE (tolerance 1e-5) and straightness of 1000 sampled paths, and the
# NLL of 2000 points with the exact divergence. The coupling table of docs/benchmarks.md (the
# paper's objectives are compared by `cargo xtask bench`).
#
#   scripts/compare.sh couplings  [STEPS] [OUT]   independent vs minibatch-OT pairs
#
# Defaults: 2000 steps, runs/<comparison>. FM=path/to/fm picks the binary (target/release/fm),
# DATA the data sets ("8gaussians checkerboard").
set -euo pipefail
comparison=${1:?couplings}
steps=${2:-2000}
out=${3:-runs/$comparison}
fm=${FM:-target/release/fm}
case "$comparison" in
  couplings) variants=("independent:--coupling independent" "ot:--coupling ot") ;;
  *) echo "unknown comparison '$comparison': couplings (the objectives: cargo xtask bench)" >&2; exit 2 ;;
esac
field() { sed -E "s/.*\"$1\":([^,}]*).*/\1/" <<<"$2"; }
printf '%-13s %-12s %10s %8s %13s %10s\n' data variant steps/s nfe straightness nll_nats
for data in ${DATA:-8gaussians checkerboard}; do
  for variant in "${variants[@]}"; do
    name=${variant%%:*}
    run="$out/$data-$name"
    rm -rf "$run"
    # shellcheck disable=SC2086 # the variant's flags are meant to split
    train=$("$fm" train --data "$data" ${variant#*:} --steps "$steps" --batch-size 1024 \
      --warmup 100 --cosine --ema 0.99 --checkpoint-every "$steps" --out "$run" --json | tail -1)
    sample=$("$fm" sample --run "$run" --n 1000 --save-trajectories "$run/paths.npy" --json | tail -1)
    nll=$("$fm" nll --run "$run" --n 2000 --json | tail -1)
    printf '%-13s %-12s %10.2f %8.0f %13.4f %10.4f\n' "$data" "$name" \
      "$(field steps_per_s "$train")" "$(field nfe "$sample")" \
      "$(field straightness "$sample")" "$(field nll_nats "$nll")"
  done
done
