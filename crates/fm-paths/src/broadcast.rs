//! Per-sample scalars against batched tensors.

use burn::tensor::Tensor;

/// Reshapes a per-sample value `c` (`[B]`) to `[B, 1, ..., 1]` with the rank of `like`
/// (`[B, ...]`), so that `c * like` scales each sample by its own value.
pub fn per_sample<const D: usize>(c: Tensor<1>, like: &Tensor<D>) -> Tensor<D> {
    let mut shape = [1usize; D];
    shape[0] = like.dims()[0];
    c.reshape(shape)
}
