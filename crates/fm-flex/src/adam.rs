//! One Adam update of a parameter and its two moments: a single fused pass on Flex, burn's
//! primitives in the same order elsewhere.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch};
use burn::tensor::Tensor;

/// The scalars of one Adam step (Kingma and Ba, Algorithm 1, in burn's arrangement):
/// `m1 <- beta_1 m1 + (1 - beta_1) g`, `m2 <- beta_2 m2 + (1 - beta_2) g^2`, then
/// `p <- p - lr (factor m1) / (sqrt(m2) + epsilon)`, where burn folds the bias corrections into
/// `factor = sqrt(1 - beta_2^t) / (1 - beta_1^t)` and `epsilon = eps sqrt(1 - beta_2^t)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    /// Decay of the first moment.
    pub beta_1: f32,
    /// Decay of the second moment.
    pub beta_2: f32,
    /// The bias corrections' factor on the first moment.
    pub factor: f32,
    /// The corrected epsilon added to `sqrt(m2)`.
    pub epsilon: f32,
    /// The learning rate.
    pub lr: f32,
}

impl AdamStep {
    /// `[beta_1, beta_2, factor, epsilon, lr]`, as the backend operation takes them.
    fn scalars(self) -> [f32; 5] {
        [self.beta_1, self.beta_2, self.factor, self.epsilon, self.lr]
    }
}

/// `(p, m1, m2)` after one step of [`AdamStep`] from the parameter `p`, its gradient `g` and
/// its moments `m1`, `m2`, all of one shape. On Flex the buffers of `p`, `m1` and `m2` are
/// updated in place when nothing else holds them.
pub fn adam_update<const D: usize>(
    p: Tensor<D>,
    g: Tensor<D>,
    m1: Tensor<D>,
    m2: Tensor<D>,
    step: AdamStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let fused = crate::is_flex(&g.device());
    let (p, g, m1, m2) = (
        p.into_dispatch(),
        g.into_dispatch(),
        m1.into_dispatch(),
        m2.into_dispatch(),
    );
    let (p, m1, m2) = if fused {
        <Dispatch as crate::adam_ops::AdamOps>::adam_update(p, g, m1, m2, step.scalars())
    } else {
        composed::<Dispatch>(p, g, m1, m2, step.scalars())
    };
    (
        Tensor::from_dispatch(p),
        Tensor::from_dispatch(m1),
        Tensor::from_dispatch(m2),
    )
}

/// The update from burn's primitives, in the order of burn's own Adam.
pub(crate) fn composed<B: Backend>(
    p: FloatTensor<B>,
    g: FloatTensor<B>,
    m1: FloatTensor<B>,
    m2: FloatTensor<B>,
    step: [f32; 5],
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let [beta_1, beta_2, factor, epsilon, lr] = step;
    let m1 = B::float_add(
        B::float_mul_scalar(m1, beta_1.into()),
        B::float_mul_scalar(g.clone(), (1.0 - beta_1).into()),
    );
    let m2 = B::float_add(
        B::float_mul_scalar(m2, beta_2.into()),
        B::float_mul_scalar(B::float_mul(g.clone(), g), (1.0 - beta_2).into()),
    );
    let update = B::float_div(
        B::float_mul_scalar(m1.clone(), factor.into()),
        B::float_add_scalar(B::float_sqrt(m2.clone()), epsilon.into()),
    );
    let p = B::float_sub(p, B::float_mul_scalar(update, lr.into()));
    (p, m1, m2)
}
