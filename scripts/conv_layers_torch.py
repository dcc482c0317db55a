"""PyTorch's 2-D convolution at the layer shapes of the `mnist` U-Net, batch 32: the twin of
`cargo bench -p fm-flex --bench kernels -- conv_unet_mnist_b32` (same names, same work);
with `--norms`, its group norm and SiLU, the twin of `group_norm_silu_unet_mnist_b32`.

    python scripts/conv_layers_torch.py [--threads 1] [--reps 20] [--norms]

`forward`: `conv2d(x, w, b)` under no_grad. `train`: the forward and both gradients, as
`sum(y * g)` backward with x, w and b requiring gradients. Prints one line per case: the median
time in ms and GFLOP/s of the forward product (criterion's throughput, for comparison).
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

# (name, c, co, size, k, stride), padding k // 2: as UNET_MNIST_CONVS in
# crates/fm-flex/benches/kernels.rs.
CONVS = [
    ("in_1to32_28", 1, 32, 28, 3, 1),
    ("res_32to32_28", 32, 32, 28, 3, 1),
    ("down_32to32_28s2", 32, 32, 28, 3, 2),
    ("res_32to64_14", 32, 64, 14, 3, 1),
    ("res_64to64_14", 64, 64, 14, 3, 1),
    ("skip_32to64_14", 32, 64, 14, 1, 1),
    ("down_64to64_14s2", 64, 64, 14, 3, 2),
    ("res_64to64_7", 64, 64, 7, 3, 1),
    ("res_128to64_7", 128, 64, 7, 3, 1),
    ("up_64to64_28", 64, 64, 28, 3, 1),
    ("res_96to32_28", 96, 32, 28, 3, 1),
    ("out_32to1_28", 32, 1, 28, 3, 1),
]


def median_ms(f, reps):
    for _ in range(3):
        f()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--norms", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    n = a.batch
    print(f"torch {torch.__version__}, {a.threads} thread(s), batch {n}")
    if a.norms:
        return norms(n, a.reps)
    for name, c, co, size, k, s in CONVS:
        out = (size + 2 * (k // 2) - k) // s + 1
        flop = 2 * n * co * out * out * c * k * k
        x = torch.randn(n, c, size, size)
        w = torch.randn(co, c, k, k)
        b = torch.randn(co)
        g = torch.randn(n, co, out, out)

        def forward():
            with torch.no_grad():
                F.conv2d(x, w, b, stride=s, padding=k // 2)

        xg, wg, bg = (t.clone().requires_grad_() for t in (x, w, b))

        def train():
            for t in (xg, wg, bg):
                t.grad = None
            y = F.conv2d(xg, wg, bg, stride=s, padding=k // 2)
            (y * g).sum().backward()

        for case, f in (("forward", forward), ("train", train)):
            ms = median_ms(f, a.reps)
            print(f"{name}/{case}: {ms:.3f} ms, {flop / ms / 1e6:.2f} GFLOP/s")


def norms(n, reps):
    """`silu(group_norm(x, 32 groups))` at the U-Net's activation shapes, as the fused kernel."""
    for c, size in NORMS:
        x = torch.randn(n, c, size, size)
        gamma, beta, g = torch.randn(c), torch.randn(c), torch.randn(n, c, size, size)

        def forward():
            with torch.no_grad():
                F.silu(F.group_norm(x, 32, gamma, beta, 1e-5))

        xg, gg, bg = (t.clone().requires_grad_() for t in (x, gamma, beta))

        def train():
            for t in (xg, gg, bg):
                t.grad = None
            (F.silu(F.group_norm(xg, 32, gg, bg, 1e-5)) * g).sum().backward()

        for case, f in (("forward", forward), ("train", train)):
            ms = median_ms(f, reps)
            print(f"{c}x{size}/{case}: {ms:.3f} ms, {x.numel() / ms / 1e6:.2f} Gelem/s")


# (channels, size) as the group-norm bench in crates/fm-flex/benches/kernels.rs.
NORMS = [(32, 28), (96, 28), (64, 14), (64, 7)]

if __name__ == "__main__":
    main()
