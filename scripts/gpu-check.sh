#!/usr/bin/env bash
# The GPU check: one command on an NVIDIA machine that builds `fm` with the `cuda` feature (or
# takes a binary copied in), checks it against the CPU, trains and samples in f32 and bf16, runs
# the GPU benchmark, and writes one report (report.md and report.json).
#
#   scripts/gpu-check.sh                       build (downloads LLVM once) and check cuda
#   scripts/gpu-check.sh --offline-llvm        build against Debian's LLVM (scripts/offline-llvm.sh)
#   scripts/gpu-check.sh --pack DIR            build, then put the binary, this script and the
#                                              check's data in DIR (under 64 MiB), for a machine
#                                              without network or toolchain: there run
#                                              DIR/gpu-check.sh --bin DIR/fm
#   scripts/gpu-check.sh --bin PATH            check a binary already built
#
# Other flags: --device NAME (default cuda; any `--device` of fm, e.g. wgpu:gl or cpu, to try the
# script where there is no GPU), --out DIR (default gpu-check-report), --data DIR (the CIFAR-10
# binary folder the image checks train on; default the 20 images of shared/data or of the pack),
# --quick (few steps and the small U-Net everywhere: a dry run of the script, not a benchmark).
#
# What it runs, each on --device (docs/scaling.md, "The GPU check"):
#   1. fm devices --check: the 2-D network's velocity and divergence and a small U-Net's velocity
#      and input gradient against the CPU.
#   2. 2-D smoke and benchmark, f32 and bf16: 300 training steps on checkerboard at batch 4096
#      (the loss must fall; steps/s), then 100 000 samples with midpoint, 20 steps (samples/s).
#   3. U-Net smoke, f32 and bf16: the tiny preset, 100 steps at batch 32 (the loss must fall).
#   4. U-Net benchmark, f32 and bf16: the cifar10 preset at batch 128, 20 steps (steps/s, and the
#      GPU's peak memory from nvidia-smi, sampled every 100 ms).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
device=cuda
bin=""
pack=""
out="gpu-check-report"
data=""
quick=0
offline=0
while [ $# -gt 0 ]; do
    case "$1" in
        --device) device="$2"; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        --pack) pack="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --data) data="$2"; shift 2 ;;
        --quick) quick=1; shift ;;
        --offline-llvm) offline=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu-check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

# 1. The binary: given, or built from this checkout.
if [ -z "$bin" ]; then
    repo="$(cd "$here/.." && pwd)"
    [ -f "$repo/Cargo.toml" ] || { echo "gpu-check: no --bin and no checkout at $repo to build" >&2; exit 2; }
    if [ "$offline" = 1 ]; then
        "$repo/scripts/offline-llvm.sh"
    fi
    target="${CARGO_TARGET_DIR:-$repo/target}"
    echo "== building fm with the cuda feature (release)"
    (cd "$repo" && cargo build --release --locked -p fm-cli --features cuda)
    bin="$target/release/fm"
fi
[ -x "$bin" ] || { echo "gpu-check: $bin is not an executable" >&2; exit 2; }

if [ -n "$pack" ]; then
    # A folder to copy to a machine without network: the binary without its debug sections,
    # this script, and the 20 CIFAR-10 images the image checks train on.
    [ -e "$pack" ] && { echo "gpu-check: $pack exists; name a new folder" >&2; exit 2; }
    mkdir -p "$pack/data"
    objcopy --strip-debug "$bin" "$pack/fm"
    cp "$0" "$pack/gpu-check.sh"
    cp -r --no-preserve=mode "${data:-$here/../../shared/data/cifar10-foolbox20}" "$pack/data/cifar10"
    size=$(du -sm "$pack" | cut -f1)
    echo "gpu-check: packed $pack ($size MiB): copy it over and run $pack/gpu-check.sh --bin $pack/fm"
    if [ "$size" -ge 64 ]; then
        echo "gpu-check: the pack is $size MiB, over 64" >&2
        exit 1
    fi
    exit 0
fi

if [ -z "$data" ]; then
    for d in "$here/data/cifar10" "$here/../../shared/data/cifar10-foolbox20" "$here/../shared/data/cifar10-foolbox20"; do
        [ -f "$d/test_batch.bin" ] && { data="$d"; break; }
    done
fi
[ -n "$data" ] || { echo "gpu-check: no CIFAR-10 folder found: give --data DIR" >&2; exit 2; }

[ -e "$out" ] && { echo "gpu-check: $out exists; name a new --out folder" >&2; exit 2; }
mkdir -p "$out"
out="$(cd "$out" && pwd)"
log="$out/log.txt"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$out/runtime}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

if [ "$quick" = 1 ]; then
    steps2d=60 batch2d=512 n2d=2000 unet_steps=40 bench_model=tiny bench_batch=8 bench_steps=3
else
    steps2d=300 batch2d=4096 n2d=100000 unet_steps=100 bench_model=cifar10 bench_batch=128 bench_steps=20
fi

gpu="none (nvidia-smi not found)"
if command -v nvidia-smi >/dev/null; then
    gpu="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)"
fi
failures=0
results=()

# The value of "key" in a one-line JSON object.
field() { grep -oE "\"$2\":[^,}]*" <<<"$1" | head -1 | cut -d: -f2- | tr -d '"'; }

# Runs fm with the given arguments, appending its output to the log; prints its last stdout line.
run_fm() {
    echo "\$ fm $*" >>"$log"
    local line
    if ! line="$("$bin" "$@" 2>>"$log" | tee -a "$log" | tail -1)"; then
        return 1
    fi
    printf '%s\n' "$line"
}

# Whether the mean loss of the last ten logged steps is below 0.9 of the first ten's.
loss_fell() {
    awk -F'"loss":' 'NF > 1 { split($2, a, /[,}]/); l[n++] = a[1] }
        END { if (n < 20) exit 1; for (i = 0; i < 10; i++) { f += l[i]; e += l[n - 1 - i] }
              printf "%.4f -> %.4f", f / 10, e / 10; exit !(e < 0.9 * f) }' "$1/metrics.jsonl"
}

record() { # name, ok (1/0), detail
    results+=("{\"check\":\"$1\",\"ok\":$([ "$2" = 1 ] && echo true || echo false),\"detail\":\"$3\"}")
    printf '%-28s %-4s %s\n' "$1" "$([ "$2" = 1 ] && echo ok || echo FAIL)" "$3" | tee -a "$out/summary.txt"
    [ "$2" = 1 ] || failures=$((failures + 1))
}

# Peak GPU memory while a command runs, sampled with nvidia-smi (MiB above the idle value).
peak_memory_start() {
    command -v nvidia-smi >/dev/null || return 0
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$out/memory.csv" 2>/dev/null &
    sampler=$!
}
peak_memory_stop() {
    [ -n "${sampler:-}" ] || { echo "n/a"; return; }
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
    sampler=""
    awk 'NR == 1 { idle = $1 } { if ($1 > peak) peak = $1 } END { printf "%d MiB", peak - idle }' "$out/memory.csv"
}

echo "== gpu-check of $bin on $device ($gpu); log: $log"
if [ "$device" = cpu ] || [ "$device" = flex ]; then
    record "devices --check" 1 "skipped: the CPU is the reference the check compares with"
elif line="$(run_fm devices --check "$device" --json)"; then
    record "devices --check" "$([ "$(field "$line" agrees)" = true ] && echo 1 || echo 0)" \
        "velocity $(field "$line" velocity_rel_diff), divergence $(field "$line" divergence_rel_diff), unet velocity $(field "$line" unet_velocity_rel_diff), unet vjp $(field "$line" unet_vjp_rel_diff)"
else
    record "devices --check" 0 "failed: see the log"
fi

for dtype in f32 bf16; do
    run="$out/runs/2d-$dtype"
    if line="$(run_fm train --data checkerboard --device "$device" --dtype "$dtype" --steps "$steps2d" \
        --batch-size "$batch2d" --log-every 1 --out "$run" --json)"; then
        fell="$(loss_fell "$run")" && ok=1 || ok=0
        record "2-D train $dtype" "$ok" "loss $fell; $(field "$line" steps_per_s) steps/s at batch $batch2d"
        if line="$(run_fm sample --run "$run" --device "$device" --dtype "$dtype" --n "$n2d" --solver midpoint \
            --steps 20 --json)"; then
            record "2-D sample $dtype" 1 "$(field "$line" samples_per_s) samples/s (n $n2d, midpoint 20 steps)"
        else
            record "2-D sample $dtype" 0 "failed: see the log"
        fi
    else
        record "2-D train $dtype" 0 "failed: see the log"
    fi

    run="$out/runs/unet-$dtype"
    if run_fm train --data "cifar10:$data" --model tiny --device "$device" --dtype "$dtype" \
        --steps "$unet_steps" --batch-size 32 --log-every 1 --out "$run" --json >/dev/null; then
        fell="$(loss_fell "$run")" && ok=1 || ok=0
        record "U-Net train $dtype" "$ok" "tiny preset, loss $fell"
    else
        record "U-Net train $dtype" 0 "failed: see the log"
    fi

    run="$out/runs/bench-$dtype"
    peak_memory_start
    if line="$(run_fm train --data "cifar10:$data" --model "$bench_model" --device "$device" --dtype "$dtype" \
        --steps "$bench_steps" --batch-size "$bench_batch" --out "$run" --json)"; then
        record "U-Net bench $dtype" 1 "$bench_model preset, batch $bench_batch: $(field "$line" steps_per_s) steps/s, peak memory $(peak_memory_stop)"
    else
        peak_memory_stop >/dev/null
        record "U-Net bench $dtype" 0 "failed: see the log"
    fi
done

{
    echo "{\"binary\":\"$bin\",\"device\":\"$device\",\"gpu\":\"$gpu\",\"quick\":$([ "$quick" = 1 ] && echo true || echo false),"
    echo "\"date\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\",\"failures\":$failures,\"results\":["
    (IFS=,; echo "${results[*]}")
    echo "]}"
} >"$out/report.json"
{
    echo "# GPU check: fm on $device"
    echo
    echo "- GPU: $gpu"
    echo "- binary: $bin; $(date -u +%Y-%m-%d)"
    [ "$quick" = 1 ] && echo "- quick run (--quick): few steps, not a benchmark"
    echo
    echo '```'
    cat "$out/summary.txt"
    echo '```'
} >"$out/report.md"
echo "== report: $out/report.md, $out/report.json ($failures failed)"
[ "$failures" -eq 0 ]
