#!/usr/bin/env bash
# Steps/s of `fm train --mpi` against the number of ranks on this machine (docs/scaling.md).
#
# Strong scaling keeps the global batch; weak scaling keeps each rank's share. On one machine
# the ranks share its cores (RAYON_NUM_THREADS = cores / ranks, at least 1; --bind-to none, as
# OpenMPI would otherwise pin each rank and its threads to one core), so the curve shows
# what the all-reduce and the per-rank overheads cost, not what more machines would gain.
#
#   cargo build --release -p fm-cli --features mpi
#   scripts/mpi_scaling.sh                  # RANKS="1 2 4" STEPS=100 FM=target/release/fm
#   DATA=mnist:../shared/data/mnist MODEL=mnist BATCH=64 STEPS=10 scripts/mpi_scaling.sh
set -euo pipefail
FM="${FM:-${CARGO_TARGET_DIR:-target}/release/fm}"
RANKS="${RANKS:-1 2 4}"
STEPS="${STEPS:-100}"
DATA="${DATA:-checkerboard}"
MODEL="${MODEL:-mlp}"
BATCH="${BATCH:-4096}"
CORES="$(nproc)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "# $FM: data $DATA, model $MODEL, $STEPS steps, $CORES cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| scaling | ranks | threads/rank | global batch | steps/s |"
echo "|---|---|---|---|---|"
for mode in strong weak; do
    for ranks in $RANKS; do
        batch=$BATCH
        [ "$mode" = weak ] && batch=$((BATCH * ranks))
        threads=$((CORES / ranks > 0 ? CORES / ranks : 1))
        run="$work/$mode-$ranks"
        report="$(RAYON_NUM_THREADS=$threads mpirun -np "$ranks" --oversubscribe --bind-to none \
            "$FM" train --mpi --data "$DATA" --model "$MODEL" --batch-size "$batch" \
            --steps "$STEPS" --checkpoint-every "$STEPS" --log-every "$STEPS" \
            --out "$run" --json)"
        rate="$(echo "$report" | grep -oE '"steps_per_s":[0-9.e+-]+' | cut -d: -f2)"
        printf '| %s | %d | %d | %d | %.3f |\n' "$mode" "$ranks" "$threads" "$batch" "$rate"
    done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
