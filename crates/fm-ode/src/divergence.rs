//! The divergence `div v(x) = tr(dv/dx)` of a field, by reverse-mode autodiff.
//!
//! Both estimators are one formula, `div v(x) ~= w sum_k eps_k^T (dv/dx) eps_k`, evaluated with
//! all probes at once: `x` is repeated once per probe along the batch axis, a single forward and
//! backward pass of `sum(v * eps)` gives every vector-Jacobian product `eps_k^T dv/dx`.
//! - Exact: the probes are the `n` unit vectors of the per-sample dimension and `w = 1`
//!   (cost: a batch `n` times larger; for low-dimensional data).
//! - Hutchinson (1989): `K` random probes with `E[eps eps^T] = I` (Rademacher or Gaussian) and
//!   `w = 1 / K`; unbiased, and exact for Rademacher probes whenever `dv/dx` is diagonal.

use burn::tensor::{Device, Distribution, Tensor};
use fm_paths::ParseError;
use std::fmt;
use std::str::FromStr;

/// How to compute the divergence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Divergence {
    /// The exact trace, one probe per dimension.
    Exact,
    /// Hutchinson's stochastic trace estimator.
    Hutchinson {
        /// Distribution of the probes.
        probe: ProbeKind,
        /// Number of probes averaged per sample.
        count: usize,
    },
}

impl Divergence {
    /// Hutchinson's estimator with one Rademacher probe (FFJORD's and the paper's choice for
    /// images, where the exact trace would take `D` backward passes).
    pub const HUTCHINSON: Self = Self::Hutchinson {
        probe: ProbeKind::Rademacher,
        count: 1,
    };
}

/// Distribution of Hutchinson probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// Entries +1 or -1 with equal probability (the lower-variance choice).
    Rademacher,
    /// Standard normal entries.
    Gaussian,
}

const EXPECTED: &str = "exact, hutchinson[:K] or gaussian[:K] (K a positive probe count)";

impl FromStr for Divergence {
    type Err = ParseError;

    /// `exact`, `hutchinson` (one Rademacher probe), or `hutchinson:K` / `gaussian:K`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseError::new("divergence", s, EXPECTED);
        let (name, count) = match s.split_once(':') {
            Some((name, k)) => (
                name,
                k.parse::<usize>().ok().filter(|&k| k > 0).ok_or_else(bad)?,
            ),
            None => (s, 1),
        };
        match name {
            "exact" if count == 1 => Ok(Self::Exact),
            "hutchinson" | "rademacher" => Ok(Self::Hutchinson {
                probe: ProbeKind::Rademacher,
                count,
            }),
            "gaussian" => Ok(Self::Hutchinson {
                probe: ProbeKind::Gaussian,
                count,
            }),
            _ => Err(bad()),
        }
    }
}

/// The spelling [`FromStr`] reads back: `exact`, `hutchinson:K` or `gaussian:K`.
impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact => f.pad("exact"),
            Self::Hutchinson { probe, count } => {
                let name = match probe {
                    ProbeKind::Rademacher => "hutchinson",
                    ProbeKind::Gaussian => "gaussian",
                };
                f.pad(&format!("{name}:{count}"))
            }
        }
    }
}

/// A fixed set of probes for a batch: keep it for a whole ODE solve, so that the estimated
/// field stays smooth in time (FFJORD).
#[derive(Debug, Clone)]
pub struct Probes<const D: usize> {
    /// `[K * B, ...]`: probe `k` of sample `b` at row `k * B + b`.
    eps: Tensor<D>,
    count: usize,
    weight: f64,
}

impl<const D: usize> Probes<D> {
    /// Probes for a batch of shape `shape` (`[B, ...]`) on `device`.
    pub fn new(divergence: Divergence, shape: [usize; D], device: &Device) -> Self {
        let batch = shape[0];
        let per_sample: usize = shape[1..].iter().product();
        let mut stacked = shape;
        match divergence {
            Divergence::Exact => {
                // Row k * B + b is the k-th unit vector.
                stacked[0] = per_sample * batch;
                let eye: Tensor<2> = Tensor::eye(per_sample, device);
                let eps: Tensor<3> = eye
                    .unsqueeze_dim::<3>(1)
                    .expand([per_sample, batch, per_sample]);
                Self {
                    eps: eps.reshape(stacked),
                    count: per_sample,
                    weight: 1.0,
                }
            }
            Divergence::Hutchinson { probe, count } => {
                stacked[0] = count * batch;
                let eps = match probe {
                    ProbeKind::Rademacher => {
                        Tensor::random(stacked, Distribution::Bernoulli(0.5), device)
                            .mul_scalar(2.0)
                            .sub_scalar(1.0)
                    }
                    ProbeKind::Gaussian => {
                        Tensor::random(stacked, Distribution::Normal(0.0, 1.0), device)
                    }
                };
                Self {
                    eps,
                    count,
                    weight: 1.0 / count as f64,
                }
            }
        }
    }

    /// The number of probes per sample.
    pub fn count(&self) -> usize {
        self.count
    }
}

/// `v = f(x)` and its divergence, for `x`: `[B, ...]` -> (`[B, ...]`, `[B]`).
///
/// ```
/// use burn::tensor::{Device, Distribution, Tensor, TensorData};
/// use fm_ode::divergence::velocity_and_divergence;
/// use fm_ode::{Divergence, Probes};
///
/// let dev = Device::flex();
/// // v(x) = x A^T with trace(A) = -1.5: the divergence is -1.5 everywhere.
/// let a = Tensor::<2>::from_data(TensorData::new(vec![-0.5f32, 2.0, -3.0, -1.0], [2, 2]), &dev);
/// let x = Tensor::<2>::random([8, 2], Distribution::Normal(0.0, 1.0), &dev);
/// let probes = Probes::new(Divergence::Exact, [8, 2], &dev);
/// let (_v, div) = velocity_and_divergence(|x: Tensor<2>| x.matmul(a.clone().transpose()), &x, &probes);
/// assert!((div + 1.5).abs().max().into_scalar::<f32>() < 1e-5);
/// ```
///
/// `f` must be differentiable by burn's autodiff: `x` is given to it with autodiff enabled
/// (whatever its device), and any tensor without autodiff that `f` combines with it, such as the
/// weights of a model made with `valid()`, counts as a constant. The results carry no autodiff.
pub fn velocity_and_divergence<const D: usize, F>(
    f: F,
    x: &Tensor<D>,
    probes: &Probes<D>,
) -> (Tensor<D>, Tensor<1>)
where
    F: Fn(Tensor<D>) -> Tensor<D>,
{
    let batch = x.dims()[0];
    // Probes are taken in chunks of at most MAX_ROWS rows a pass, so memory stays bounded
    // whatever their number (each pass repeats x once per probe it holds).
    let per_pass = (MAX_ROWS / batch.max(1)).clamp(1, probes.count);
    let (mut velocity, mut sum) = (None, None::<Tensor<1>>);
    for start in (0..probes.count).step_by(per_pass) {
        let k = per_pass.min(probes.count - start);
        let eps = probes.eps.clone().narrow(0, start * batch, k * batch);
        let xs = x.clone().inner().repeat_dim(0, k).autodiff().require_grad();
        let v = f(xs.clone());
        let grads = (v.clone() * eps.clone()).sum().backward();
        let vjp = xs
            .grad(&grads)
            .expect("the field's output does not depend on its input");
        let per_probe: Tensor<2> = (vjp * eps).reshape([(k * batch) as i64, -1]).sum_dim(1);
        let part = per_probe.reshape([k, batch]).sum_dim(0).reshape([batch]);
        sum = Some(match sum {
            Some(total) => total + part,
            None => part,
        });
        velocity.get_or_insert_with(|| v.inner().narrow(0, 0, batch));
    }
    let div = sum.expect("at least one probe").mul_scalar(probes.weight);
    (velocity.expect("at least one probe"), div)
}

/// The most rows (samples times probes) of one forward and backward pass of the divergence.
const MAX_ROWS: usize = 1 << 16;
