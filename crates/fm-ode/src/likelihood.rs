//! Exact log-likelihood of a flow by the instantaneous change of variables (Chen et al. 2018;
//! paper section 2): for `dx/dt = v(x, t)`, `d/dt log p_t(x_t) = -div v(x_t, t)`, so
//! `log p_1(x_1) = log p_0(x_0) - int_0^1 div v(x_t, t) dt`.
//!
//! The solve runs the augmented system `d/dt [x, l] = [v(x, t), div v(x, t)]` from `t = 1`
//! (`x = x_1`, `l = 0`) back to `t = 0`, where `l(0) = -int_0^1 div v dt`; then
//! `log p_1(x_1) = log p_0(x_0) + l(0)`.

use crate::divergence::{Probes, velocity_and_divergence};
use crate::solve::{SolveError, SolverConfig, Stats, solve};
use burn::tensor::Tensor;
use std::f64::consts::PI;

/// The result of a likelihood solve.
#[derive(Debug, Clone)]
pub struct LogLikelihood<const D: usize> {
    /// `log p_1(x_1)` per sample, `[B]`, in nats.
    pub log_prob: Tensor<1>,
    /// The points `x_0` the data map to at t = 0, `[B, ...]`.
    pub x0: Tensor<D>,
    /// `l(0) = -int_0^1 div v dt` per sample, `[B]`.
    pub log_det: Tensor<1>,
    /// The cost of the solve.
    pub stats: Stats,
}

/// `log N(x; 0, std^2 I)` per sample: `-|x|^2 / (2 std^2) - n/2 ln(2 pi std^2)` with `n` the
/// per-sample dimension. `x`: `[B, ...]` -> `[B]`.
pub fn gaussian_log_prob<const D: usize>(x: &Tensor<D>, std: f64) -> Tensor<1> {
    let batch = x.dims()[0];
    let n: usize = x.dims()[1..].iter().product();
    let sq: Tensor<2> = x.clone().square().reshape([batch as i64, -1]).sum_dim(1);
    sq.reshape([batch])
        .mul_scalar(-0.5 / (std * std))
        .sub_scalar(0.5 * n as f64 * (2.0 * PI * std * std).ln())
}

/// `log p_1(x1)` of the flow of `field` (a velocity `v(x, t)`, differentiable in x) from the
/// source density `log_p0`, solving from t = 1 to t = 0 with `config` and the divergence given
/// by `probes` (kept fixed for the whole solve).
///
/// ```
/// use burn::tensor::{Device, Tensor, TensorData};
/// use fm_ode::{Divergence, Probes, SolverConfig, gaussian_log_prob, log_likelihood};
/// use fm_paths::{AffinePath, GaussianData, scheduler::CondOt};
///
/// let dev = Device::flex();
/// let path = AffinePath::new(CondOt::new(1e-4));
/// let data = GaussianData::new(vec![2.0, -1.0], 0.5); // N(m, s^2 I): its field is exact
/// let x1 = Tensor::<2>::from_data(TensorData::new(vec![2.1f32, -0.7, 1.5, -1.2], [2, 2]), &dev);
/// let ll = log_likelihood(
///     |x, t| data.marginal_velocity(&path, x, t),
///     |x0| gaussian_log_prob(x0, 1.0),
///     x1.clone(),
///     &Probes::new(Divergence::Exact, [2, 2], &dev),
///     &SolverConfig::dopri5(1e-6, 1e-6),
/// )
/// .unwrap();
/// // The flow's density at t = 1 is the data's, widened by sigma_min: N(m, (s^2 + ...) I).
/// let want = data.log_density(&path, x1, 1.0);
/// assert!((ll.log_prob - want).abs().max().into_scalar::<f32>() < 1e-3);
/// ```
pub fn log_likelihood<const D: usize, V, P>(
    field: V,
    log_p0: P,
    x1: Tensor<D>,
    probes: &Probes<D>,
    config: &SolverConfig,
) -> Result<LogLikelihood<D>, SolveError>
where
    V: Fn(Tensor<D>, f64) -> Tensor<D>,
    P: Fn(&Tensor<D>) -> Tensor<1>,
{
    let batch = x1.dims()[0];
    let zero = Tensor::<1>::zeros([batch], &x1.device());
    let augmented = |t: f64, state: &(Tensor<D>, Tensor<1>)| {
        velocity_and_divergence(|x| field(x, t), &state.0, probes)
    };
    let solution = solve(&augmented, (x1.inner(), zero.inner()), 1.0, 0.0, config)?;
    let (x0, log_det) = solution.y;
    Ok(LogLikelihood {
        log_prob: log_p0(&x0) + log_det.clone(),
        x0,
        log_det,
        stats: solution.stats,
    })
}
