//! Evaluation of a trained run: sampling, negative log-likelihood, and sample distances.
//!
//! - NLL: `-log p_1(x)` from [`fm_ode::log_likelihood`], averaged; with the true entropy
//!   `H(q) = -E_q[log q]`, the gap `E_q[-log p] - H(q) = KL(q || p) >= 0`.
//! - Energy distance (squared): `ED^2 = 2 E|X - Y| - E|X - X'| - E|Y - Y'|`, each expectation the
//!   mean over all pairs, `i = j` included (as the PyTorch reference computes it).
//! - Straightness of sampled paths: see [`straightness`].
//! - Sliced Wasserstein-1 (2-D, equal-size sets): for the fixed directions
//!   `theta_k = pi k / K`, `k = 0..K`, the mean over k and i of `|a_(i) - b_(i)|` with `a_(i)`,
//!   `b_(i)` the sorted projections of the two sets on direction k.

use crate::data::Points;
use crate::train::{Checkpoint, TrainConfig, TrainError, latest_checkpoint, load_weights};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use fm_models::TimeMlp;
use fm_ode::{
    Probes, SaveAt, SolveError, SolverConfig, Stats, gaussian_log_prob, log_likelihood, solve,
};
use fm_paths::AffinePath;
use std::path::Path;

/// A trained run, ready to sample and evaluate.
#[derive(Debug)]
pub struct TrainedRun {
    /// The run's configuration.
    pub config: TrainConfig,
    /// The network (the EMA weights unless asked otherwise), without autodiff.
    pub model: TimeMlp,
    /// The checkpoint it came from.
    pub checkpoint: Checkpoint,
    /// Standard deviation of the source at t = 0 (`sigma_0` of the path).
    pub source_std: f64,
}

/// Loads the newest checkpoint of `run` onto `device` (EMA weights unless `raw_weights`).
pub fn load_run(run: &Path, device: &Device, raw_weights: bool) -> Result<TrainedRun, TrainError> {
    let config_file = run.join("config.json");
    let text = std::fs::read_to_string(&config_file).map_err(|e| TrainError::Io {
        path: config_file.clone(),
        message: format!(
            "cannot read the run's config ({e}); is this a run folder made by `fm train`?"
        ),
    })?;
    let config: TrainConfig = serde_json::from_str(&text).map_err(|e| TrainError::Io {
        path: config_file.clone(),
        message: format!("not a valid run config: {e}"),
    })?;
    let checkpoint = latest_checkpoint(run, &mut Vec::new())?.ok_or_else(|| TrainError::Io {
        path: run.join("checkpoints"),
        message: "the run has no checkpoint yet".into(),
    })?;
    let file = if raw_weights {
        checkpoint.model_file()
    } else {
        checkpoint.ema_file()
    };
    let model = load_weights(config.model.init(device), &file)?;
    let path = AffinePath::new(config.scheduler().map_err(TrainError::Config)?);
    Ok(TrainedRun {
        source_std: path.source_std(),
        config,
        model,
        checkpoint,
    })
}

impl TrainedRun {
    /// The learned velocity at scalar time `t`: `[B, D]` -> `[B, D]`.
    pub fn velocity(&self, x: Tensor<2>, t: f64) -> Tensor<2> {
        let batch = x.dims()[0];
        let time = Tensor::full([batch], t, &x.device());
        self.model.forward(x, time)
    }

    /// `n` samples from `x0 ~ N(0, sigma_0^2 I)` pushed through the flow, in batches of at most
    /// `batch`; returns the samples and the statistics of every batch's solve.
    pub fn sample(
        &self,
        n: usize,
        batch: usize,
        solver: &SolverConfig,
        device: &Device,
    ) -> Result<(Points, Vec<Stats>), SolveError> {
        let dim = self.config.model.input_dim;
        let mut values = Vec::with_capacity(n * dim);
        let mut stats = Vec::new();
        let field = |t: f64, x: &Tensor<2>| self.velocity(x.clone(), t);
        for start in (0..n).step_by(batch.max(1)) {
            let b = batch.min(n - start);
            let x0 =
                Tensor::<2>::random([b, dim], Distribution::Normal(0.0, self.source_std), device);
            let sol = solve(&field, x0, 0.0, 1.0, solver)?;
            values.extend(sol.y.into_data().iter::<f32>());
            stats.push(sol.stats);
        }
        Ok((Points { values, dim }, stats))
    }

    /// The paths of `n` source points through the flow, saved at `times` (which must include
    /// 0 and 1 to show the whole path): one set of points per time, in the same order.
    pub fn trajectories(
        &self,
        n: usize,
        times: &[f64],
        solver: &SolverConfig,
        device: &Device,
    ) -> Result<(Vec<Points>, Stats), SolveError> {
        let dim = self.config.model.input_dim;
        let x0 = Tensor::<2>::random([n, dim], Distribution::Normal(0.0, self.source_std), device);
        let field = |t: f64, x: &Tensor<2>| self.velocity(x.clone(), t);
        let config = solver.clone().saving(SaveAt::Times(times.to_vec()));
        let sol = solve(&field, x0, 0.0, 1.0, &config)?;
        let states = sol
            .ys
            .into_iter()
            .map(|y| Points {
                values: y.into_data().iter::<f32>().collect(),
                dim,
            })
            .collect();
        Ok((states, sol.stats))
    }

    /// `-log p_1(x)` in nats for each point, in batches of at most `batch`.
    pub fn nll(
        &self,
        points: &Points,
        batch: usize,
        divergence: fm_ode::Divergence,
        solver: &SolverConfig,
        device: &Device,
    ) -> Result<(Vec<f64>, Vec<Stats>), SolveError> {
        let dim = points.dim;
        let mut nll = Vec::with_capacity(points.len());
        let mut stats = Vec::new();
        for rows in points.values.chunks(batch.max(1) * dim) {
            let b = rows.len() / dim;
            let x1 = Tensor::<2>::from_data(TensorData::new(rows.to_vec(), [b, dim]), device);
            let probes = Probes::new(divergence, [b, dim], device);
            let ll = log_likelihood(
                |x, t| self.velocity(x, t),
                |x0| gaussian_log_prob(x0, self.source_std),
                x1,
                &probes,
                solver,
            )?;
            nll.extend(ll.log_prob.into_data().iter::<f32>().map(|v| -(v as f64)));
            stats.push(ll.stats);
        }
        Ok((nll, stats))
    }
}

/// Mean Euclidean distance over all pairs `(x_i, y_j)`.
fn mean_pairwise_distance(x: &Points, y: &Points) -> f64 {
    let d = x.dim;
    let mut total = 0.0;
    for a in x.values.chunks_exact(d) {
        for b in y.values.chunks_exact(d) {
            total += a
                .iter()
                .zip(b)
                .map(|(p, q)| ((p - q) as f64).powi(2))
                .sum::<f64>()
                .sqrt();
        }
    }
    total / (x.len() * y.len()) as f64
}

/// The squared energy distance (module docs).
pub fn energy_distance(x: &Points, y: &Points) -> f64 {
    2.0 * mean_pairwise_distance(x, y) - mean_pairwise_distance(x, x) - mean_pairwise_distance(y, y)
}

/// Sliced Wasserstein-1 over `directions` fixed directions (module docs); 2-D, equal sizes.
pub fn sliced_w1(x: &Points, y: &Points, directions: usize) -> f64 {
    assert!(
        x.dim == 2 && y.dim == 2 && x.len() == y.len(),
        "sliced W1 needs equal-size 2-D sets"
    );
    let project = |p: &Points, (c, s): (f64, f64)| {
        let mut v: Vec<f64> = p
            .values
            .chunks_exact(2)
            .map(|q| q[0] as f64 * c + q[1] as f64 * s)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let total: f64 = (0..directions)
        .map(|k| {
            let theta = std::f64::consts::PI * k as f64 / directions as f64;
            let (s, c) = theta.sin_cos();
            let (a, b) = (project(x, (c, s)), project(y, (c, s)));
            a.iter().zip(&b).map(|(p, q)| (p - q).abs()).sum::<f64>()
        })
        .sum();
    total / (directions * x.len()) as f64
}

/// Straightness of saved paths: the mean over points and saved times of
/// `|x_t - ((1 - t) x_0 + t x_1)|^2`, the squared distance from the straight line between each
/// path's ends (0 for perfectly straight, constant-speed paths). `states[k]` holds the points at
/// `times[k]`; the first and last entries are the ends.
pub fn straightness(states: &[Points], times: &[f64]) -> f64 {
    let (first, last) = match (states.first(), states.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return 0.0,
    };
    let (t0, t1) = (times[0], times[times.len() - 1]);
    let mut total = 0.0;
    for (state, &t) in states.iter().zip(times) {
        let s = (t - t0) / (t1 - t0);
        for ((x, a), b) in state.values.iter().zip(&first.values).zip(&last.values) {
            let line = (1.0 - s) * *a as f64 + s * *b as f64;
            total += (*x as f64 - line).powi(2);
        }
    }
    total / (states.len() * first.len()) as f64
}
