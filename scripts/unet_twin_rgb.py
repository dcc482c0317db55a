#!/usr/bin/env python3
"""The PyTorch twin of the U-Net presets on 3x32x32 images: the training race of the `cifar10`
preset (docs/benchmarks.md, "Winograd's F(2x2, 3x3)" and after).

The shared twin, ../shared/reference/unet_bench.py, hard-codes MNIST's 1x28x28 images, which the
`cifar10` preset's four levels cannot halve three times. This script runs the twin's own code
with three lines changed: its random images are 3x32x32, the training step adds no channel
axis, and the network takes 3 channels of 32x32. Each change must match exactly one line of the
twin, else the script stops and says which (the shared script has changed). The images are the
twin's random ones, so only `--data random` is accepted: speed does not depend on the pixels.

Usage (the twin's options; FM_TORCH_UNET points at another copy of unet_bench.py):
  python scripts/unet_twin_rgb.py --preset cifar10 --data random --threads 2 \
      --batch-size 32 --steps 4 --warmup 1
fm's side of the race: fm train --data cifar10:../shared/data/cifar10-foolbox20 --model cifar10
  --batch-size 32 --steps 3 --json --out DIR (RAYON_NUM_THREADS=2).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TWIN = os.environ.get(
    "FM_TORCH_UNET", os.path.join(HERE, "..", "..", "shared", "reference", "unet_bench.py")
)
CHANGES = [
    ("g.integers(0, 256, (n, 28, 28), dtype=np.uint8)",
     "g.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)"),
    ("x1 = dequantize(images[idx], gen).unsqueeze(1)",
     "x1 = dequantize(images[idx], gen)"),
    ("m = UNet(1, 28, args.preset, num_classes, args.attn)",
     "m = UNet(3, 32, args.preset, num_classes, args.attn)"),
]


def main():
    args = sys.argv[1:]
    if "--data" not in args or args[args.index("--data") + 1:][:1] != ["random"]:
        sys.exit("unet_twin_rgb.py: pass --data random (the twin's own images are 1x28x28 MNIST)")
    if not os.path.isfile(TWIN):
        sys.exit(f"unet_twin_rgb.py: {TWIN} not found (set FM_TORCH_UNET to unet_bench.py)")
    with open(TWIN) as f:
        source = f.read()
    for old, new in CHANGES:
        found = source.count(old)
        if found != 1:
            sys.exit(f"unet_twin_rgb.py: {TWIN}: expected one line with `{old}`, found {found}")
        source = source.replace(old, new)
    sys.argv[0] = TWIN
    exec(compile(source, TWIN, "exec"), {"__name__": "__main__", "__file__": TWIN})


if __name__ == "__main__":
    main()
