#!/usr/bin/env python3
"""Checks `fm export` against PyTorch: loads the safetensors file of an `mnist`-preset run into the
PyTorch twin of the U-Net (shared/reference/unet_bench.py) with load_state_dict(strict=True), so
every name and shape must match, then compares the twin's velocity with fm's along an Euler
trajectory that `fm sample` saved from the same weights.

  fm train  --data mnist:DIR --model mnist --batch-size 32 --steps 20 --out runs/m
  fm export --run runs/m --out m.safetensors
  fm sample --run runs/m --n 16 --solver euler --steps 40 --save-trajectories T.npy --out s.npy
  python scripts/torch_weights_check.py --weights m.safetensors --traj T.npy

Needs torch, numpy and safetensors (pip). Prints one JSON object; exits 1 if the velocities differ
by more than --tol (relative L2).
"""
import argparse
import json
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", required=True, help="the file fm export wrote")
    ap.add_argument("--traj", required=True, help="fm sample --solver euler --steps 40 --save-trajectories")
    ap.add_argument("--reference", default=os.path.join(HERE, "..", "..", "shared", "reference"),
                    help="the folder holding unet_bench.py")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    sys.path.insert(0, args.reference)
    import unet_bench  # noqa: E402  (the PyTorch twin of the `mnist` preset)

    with safe_open(args.weights, "pt") as f:
        config = json.loads(f.metadata()["fm.config"])
    unet = config["model"]["Unet"]
    classes = unet.get("num_classes")
    model = unet_bench.UNet(unet["in_channels"], unet["image_size"], "mnist", classes)
    model.load_state_dict(load_file(args.weights), strict=True)
    result = {"weights": args.weights, "tensors": len(model.state_dict()),
              "parameters": sum(p.numel() for p in model.parameters()),
              "velocity": unet_bench.verify_traj(model, args.traj)}
    print(json.dumps(result))
    sys.exit(0 if result["velocity"]["worst_rel_l2"] <= args.tol else 1)


if __name__ == "__main__":
    main()
