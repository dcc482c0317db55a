//! Evaluation of a trained run: sampling, negative log-likelihood, and sample distances.
//!
//! - NLL: `-log p_1(x)` from [`fm_ode::log_likelihood`], averaged; with the true entropy
//!   `H(q) = -E_q[log q]`, the gap `E_q[-log p] - H(q) = KL(q || p) >= 0`.
//! - Bits per dimension of 8-bit images: see [`TrainedRun::bpd`].
//! - Energy distance (squared): `ED^2 = 2 E|X - Y| - E|X - X'| - E|Y - Y'|`, each expectation the
//!   mean over all pairs, `i = j` included (as the PyTorch reference computes it).
//! - Straightness of sampled paths: see [`straightness`].
//! - Sliced Wasserstein-1 (2-D, equal-size sets): for the fixed directions
//!   `theta_k = pi k / K`, `k = 0..K`, the mean over k and i of `|a_(i) - b_(i)|` with `a_(i)`,
//!   `b_(i)` the sorted projections of the two sets on direction k.

use crate::data::{ImageSet, Points, bits_per_dim};
use crate::train::{Checkpoint, TrainConfig, TrainError, latest_checkpoint, load_weights};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use fm_models::{Guide, VelocityNet};
use fm_ode::{
    Divergence, Probes, SolveError, SolverConfig, Stats, gaussian_log_prob, log_likelihood, solve,
};
use fm_paths::{
    AffinePath, AnyScheduler, Parametrization, ScheduleTransform, Scheduler, TIME_EPSILON,
};
use rand::Rng;
use std::path::Path;

/// Which class each sample is drawn from, and the classifier-free guidance weight `w`
/// (see [`VelocityNet::guided`]: 0 unconditional, 1 conditional, above 1 guided).
#[derive(Debug, Clone, PartialEq)]
pub struct Guidance {
    /// One class per sample.
    pub classes: Vec<usize>,
    /// The guidance weight `w`.
    pub weight: f64,
}

/// A trained run, ready to sample and evaluate.
///
/// ```
/// # use burn::tensor::Device;
/// # use fm_models::{NetConfig, TimeMlpConfig};
/// # use fm_train::train::{TrainConfig, train};
/// use fm_ode::{Divergence, Method, SolverConfig};
/// use fm_train::data::{DataSource, Split};
/// use fm_train::eval::load_run;
/// use rand::SeedableRng;
///
/// # let dir = tempfile::tempdir().unwrap();
/// # let run = dir.path();
/// # let mut config = TrainConfig::new("moons", 2);
/// # config.model = NetConfig::Mlp(TimeMlpConfig::new(2).with_hidden(32).with_depth(2));
/// # (config.steps, config.batch_size) = (20, 256);
/// # train(&config, run, &[Device::flex()], false, &mut |_| std::ops::ControlFlow::Continue(())).unwrap();
/// let dev = Device::flex();
/// let trained = load_run(run, &dev, false).unwrap(); // `run`: a folder `train` wrote
/// let solver = SolverConfig::fixed(Method::Midpoint, 10);
/// let (samples, stats) = trained.sample(100, 50, &solver, &dev, None).unwrap();
/// assert_eq!((samples.len(), stats[0].nfe), (100, 20));
///
/// let data = DataSource::parse_split(&trained.config.data, Split::Test).unwrap();
/// let points = data.sample(10, &mut rand::rngs::StdRng::seed_from_u64(0));
/// let (nll, _) = trained
///     .nll(&points, 10, Divergence::Exact, &SolverConfig::dopri5(1e-5, 1e-5), &dev)
///     .unwrap();
/// assert!(nll.iter().all(|v| v.is_finite()));
/// ```
#[derive(Debug)]
pub struct TrainedRun {
    /// The run's configuration.
    pub config: TrainConfig,
    /// The network (the EMA weights unless asked otherwise), without autodiff.
    pub model: VelocityNet,
    /// The checkpoint it came from.
    pub checkpoint: Checkpoint,
    /// Newer checkpoints that could not be used, with the reason: the weights are older than
    /// the run's newest step, which a caller should say.
    pub skipped_checkpoints: Vec<String>,
    /// Standard deviation of the source at t = 0 (`sigma_0` of the path sampled along).
    pub source_std: f64,
    /// The path the model was trained on.
    pub path: AffinePath<AnyScheduler>,
    /// What the network predicts.
    pub predict: Parametrization,
    /// Another scheduler to sample along (see [`TrainedRun::with_schedule`]).
    pub schedule: Option<AnyScheduler>,
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
    let mut skipped = Vec::new();
    let checkpoint = latest_checkpoint(run, &mut skipped)?.ok_or_else(|| TrainError::Io {
        path: run.join("checkpoints"),
        message: if skipped.is_empty() {
            "the run has no checkpoint yet".into()
        } else {
            format!("every checkpoint is unusable: {}", skipped.join("; "))
        },
    })?;
    let file = if raw_weights {
        checkpoint.model_file()
    } else {
        checkpoint.ema_file()
    };
    let model = load_weights(config.model.init(device), &file)?;
    let path = AffinePath::new(config.scheduler());
    let predict = config.predict;
    Ok(TrainedRun {
        source_std: path.source_std(),
        path,
        predict,
        schedule: None,
        config,
        model,
        checkpoint,
        skipped_checkpoints: skipped,
    })
}

impl TrainedRun {
    /// Samples along `target` instead of the trained scheduler (Meta's schedule transform, see
    /// [`ScheduleTransform`]): the same marginal path, re-timed; the source becomes
    /// `N(0, sigma'_0^2 I)` of the target.
    pub fn with_schedule(mut self, target: AnyScheduler) -> Self {
        self.source_std = AffinePath::new(target.clone()).source_std();
        self.schedule = Some(target);
        self
    }

    /// The learned (unconditional) velocity at scalar time `t`: `[B, D]` -> `[B, D]`. For a
    /// solve, make the unconditional [`Guide`] once with [`TrainedRun::guide`] and call
    /// [`TrainedRun::field`].
    pub fn velocity(&self, x: Tensor<2>, t: f64) -> Tensor<2> {
        let guide = self.guide(x.dims()[0], None, 0.0, &x.device());
        self.field(x, t, &guide)
    }

    /// Classifier-free guidance `w` towards `classes` (one per row) for a solve over `rows`
    /// rows (see [`VelocityNet::guide`]); `None` gives the unconditional field.
    pub fn guide(&self, rows: usize, classes: Option<&[usize]>, w: f64, device: &Device) -> Guide {
        self.model.guide(rows, classes, w, device)
    }

    /// The velocity at scalar time `t` with the guidance `guide` (see
    /// [`VelocityNet::guided`]), along the sampling schedule.
    pub fn field(&self, x: Tensor<2>, t: f64, guide: &Guide) -> Tensor<2> {
        let Some(target) = &self.schedule else {
            return self.trained_velocity(x, t, guide);
        };
        let k = ScheduleTransform {
            trained: self.path.scheduler.clone(),
            target: target.clone(),
        }
        .at(t);
        let inner = self.trained_velocity(x.clone().div_scalar(k.scale), k.t, guide);
        x.mul_scalar(k.d_scale / k.scale) + inner.mul_scalar(k.scale * k.d_time)
    }

    /// The network's prediction at trained time `t` as a velocity. Conversions from x1 or
    /// epsilon divide by `sigma_t` or `alpha_t`, so they are evaluated at `t` kept
    /// [`TIME_EPSILON`] inside [0, 1] (and inside the training range).
    fn trained_velocity(&self, x: Tensor<2>, t: f64, guide: &Guide) -> Tensor<2> {
        let out = self.model.guided(x.clone(), t, guide);
        if self.predict == Parametrization::Velocity {
            return out;
        }
        let (lo, hi) = self.path.scheduler.training_range();
        let t = t.clamp(lo.max(TIME_EPSILON), hi.min(1.0 - TIME_EPSILON));
        let time = Tensor::full([x.dims()[0]], t, &x.device());
        self.path
            .convert(self.predict, Parametrization::Velocity, out, x, time)
    }

    /// `n` draws from the source `N(0, sigma_0^2 I)`: `[n, D]`, flattened rows.
    pub fn noise(&self, n: usize, device: &Device) -> Tensor<2> {
        let dim = self.config.model.data_dim();
        Tensor::random([n, dim], Distribution::Normal(0.0, self.source_std), device)
    }

    /// `n` samples from `x0 ~ N(0, sigma_0^2 I)` pushed through the flow, in batches of at most
    /// `batch`, optionally guided towards classes; returns the samples (flattened rows) and the
    /// statistics of every batch's solve.
    pub fn sample(
        &self,
        n: usize,
        batch: usize,
        solver: &SolverConfig,
        device: &Device,
        guidance: Option<&Guidance>,
    ) -> Result<(Points, Vec<Stats>), SolveError> {
        let dim = self.config.model.data_dim();
        let mut values = Vec::with_capacity(n.saturating_mul(dim).min(1 << 24));
        let stats = self.sample_each(n, batch, solver, device, guidance, |batch| {
            values.extend(batch.samples.values);
            Ok::<(), SolveError>(())
        })?;
        Ok((Points { values, dim }, stats))
    }

    /// Like [`TrainedRun::sample`], but hands each batch to `each` as soon as it is solved and
    /// keeps nothing: memory stays bounded by `batch` whatever `n` is. When `solver` saves times
    /// ([`fm_ode::SaveAt::Times`]), each batch carries its states at them: the paths of exactly the
    /// samples written (saving interpolates, so it changes neither the samples nor the NFE).
    /// Stops at the first error, of the solver or of `each`.
    pub fn sample_each<E: From<SolveError>>(
        &self,
        n: usize,
        batch: usize,
        solver: &SolverConfig,
        device: &Device,
        guidance: Option<&Guidance>,
        mut each: impl FnMut(SampledBatch) -> Result<(), E>,
    ) -> Result<Vec<Stats>, E> {
        let dim = self.config.model.data_dim();
        let points = |y: Tensor<2>| Points {
            values: y.into_data().iter::<f32>().collect(),
            dim,
        };
        let mut stats = Vec::new();
        for start in (0..n).step_by(batch.max(1)) {
            let b = batch.min(n - start);
            let (classes, w) = match guidance {
                Some(g) => (Some(&g.classes[start..start + b]), g.weight),
                None => (None, 0.0),
            };
            let guide = self.guide(b, classes, w, device);
            let field = |t: f64, x: &Tensor<2>| self.field(x.clone(), t, &guide);
            let sol =
                solve(&field, self.noise(b, device), 0.0, 1.0, solver).map_err(SolveError::from)?;
            stats.push(sol.stats);
            each(SampledBatch {
                samples: points(sol.y),
                saved: sol.ys.into_iter().map(points).collect(),
            })?;
        }
        Ok(stats)
    }

    /// `-log p_1(x)` in nats for each point, in batches of at most `batch`.
    pub fn nll(
        &self,
        points: &Points,
        batch: usize,
        divergence: Divergence,
        solver: &SolverConfig,
        device: &Device,
    ) -> Result<(Vec<f64>, Vec<Stats>), SolveError> {
        let dim = points.dim;
        let mut nll = Vec::with_capacity(points.len());
        let mut stats = Vec::new();
        for rows in points.values.chunks(batch.max(1).saturating_mul(dim)) {
            let b = rows.len() / dim;
            let x1 = Tensor::<2>::from_data(TensorData::new(rows.to_vec(), [b, dim]), device);
            let probes = Probes::new(divergence, [b, dim], device);
            let guide = self.guide(b, None, 0.0, device);
            let ll = log_likelihood(
                |x, t| self.field(x, t, &guide),
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

    /// Bits per dimension of the first `n` images of `set` under this run's (unconditional)
    /// flow: [`dequantized_bpd`] with [`TrainedRun::nll`].
    #[allow(clippy::too_many_arguments)]
    pub fn bpd(
        &self,
        set: &ImageSet,
        n: usize,
        k: usize,
        batch: usize,
        divergence: Divergence,
        solver: &SolverConfig,
        device: &Device,
        rng: &mut impl Rng,
    ) -> Result<(Vec<f64>, Vec<Stats>), SolveError> {
        dequantized_bpd(set, n, k, batch, rng, |points| {
            self.nll(points, points.len(), divergence, solver, device)
        })
    }
}

/// One solved batch of [`TrainedRun::sample_each`].
#[derive(Debug, Clone)]
pub struct SampledBatch {
    /// The samples, one row each.
    pub samples: Points,
    /// The batch's states at the solver's save times, one set of points per time.
    pub saved: Vec<Points>,
}

/// The paths of the first `rows` samples, gathered from the saved states of successive batches.
#[derive(Debug, Clone)]
pub struct Paths {
    rows: usize,
    /// One set of points per saved time, each at most `rows` long.
    pub states: Vec<Points>,
}

impl Paths {
    /// Paths of at most `rows` samples.
    pub fn new(rows: usize) -> Self {
        Self {
            rows,
            states: Vec::new(),
        }
    }

    /// Adds the rows of `saved` (one batch's states) that still fit.
    pub fn add(&mut self, saved: &[Points]) {
        let have = self.states.first().map_or(0, Points::len);
        let take = self.rows.saturating_sub(have);
        if take == 0 {
            return;
        }
        if self.states.is_empty() {
            self.states = saved
                .iter()
                .map(|s| Points {
                    values: Vec::new(),
                    dim: s.dim,
                })
                .collect();
        }
        for (state, batch) in self.states.iter_mut().zip(saved) {
            let n = take.min(batch.len()) * batch.dim;
            state.values.extend_from_slice(&batch.values[..n]);
        }
    }
}

/// Bits per dimension of the first `n` images of `set` (paper Sec. 6, Table 1), each with `k`
/// uniform dequantizations `y_j = 2 (p + u_j) / 256 - 1`, `u_j ~ U[0, 1)^D`:
///
/// `log P(p) ~ log (1/k sum_j p_1(y_j))` (importance weighting with the uniform proposal,
/// a lower bound on the discrete log-likelihood in expectation that tightens as `k` grows, when
/// `log p_1` is exact or `k = 1`: see [`BpdEstimator`]), then `bpd = -log P / (D ln 2) + 7`
/// ([`bits_per_dim`]). `nll` gives `-log p_1` in nats of a
/// batch of points (at most `batch` images at a time) and its solver statistics. Returns the bpd
/// of every image and all the statistics.
pub fn dequantized_bpd(
    set: &ImageSet,
    n: usize,
    k: usize,
    batch: usize,
    rng: &mut impl Rng,
    mut nll: impl FnMut(&Points) -> Result<(Vec<f64>, Vec<Stats>), SolveError>,
) -> Result<(Vec<f64>, Vec<Stats>), SolveError> {
    let dim = set.image_size();
    let indices: Vec<usize> = (0..n.min(set.len())).collect();
    let (mut bpd, mut stats) = (Vec::with_capacity(indices.len()), Vec::new());
    for chunk in indices.chunks(batch.max(1)) {
        // -log p_1 of each dequantized copy: copies[j][i].
        let mut copies = Vec::with_capacity(k);
        for _ in 0..k.max(1) {
            let points = Points {
                values: set.batch(chunk, rng, true, false),
                dim,
            };
            let (values, s) = nll(&points)?;
            copies.push(values);
            stats.extend(s);
        }
        for i in 0..chunk.len() {
            let log_p: Vec<f64> = copies.iter().map(|c| -c[i]).collect();
            bpd.push(bits_per_dim(log_mean_exp(&log_p), dim));
        }
    }
    Ok((bpd, stats))
}

/// What [`dequantized_bpd`] estimates, given how `log p_1` is computed.
///
/// With exact `log p_1`, `E[log 1/k sum_j p_1(y_j)] <= log P(p)` (Jensen), so the expected bpd
/// is an upper bound on the discrete one. Hutchinson's divergence gives an unbiased but noisy
/// `log p_1`: with `k = 1` the expectation, and so the bound, is unchanged; with `k > 1` the
/// log-mean-exp of noisy values is biased upward (it is convex), so the bpd is biased downward
/// and is no longer a bound. Ask for `--divergence exact` (cost: `D` backward passes) or `k = 1`
/// where a bound is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpdEstimator {
    /// A short name for reports, e.g. `iw-dequant(k=4), hutchinson(1 rademacher)`.
    pub name: String,
    /// Whether the expected bpd is an upper bound on the discrete model's bpd.
    pub upper_bound: bool,
}

impl BpdEstimator {
    /// The estimator of [`dequantized_bpd`] with `k` dequantizations and `divergence`.
    pub fn new(divergence: Divergence, k: usize) -> Self {
        let (div, exact) = match divergence {
            Divergence::Exact => ("exact".to_string(), true),
            Divergence::Hutchinson { probe, count } => (
                format!(
                    "hutchinson({count} {})",
                    format!("{probe:?}").to_lowercase()
                ),
                false,
            ),
        };
        Self {
            name: format!("iw-dequant(k={k}), {div}"),
            upper_bound: exact || k <= 1,
        }
    }
}

/// `log (1/n sum exp(v_i))`, computed stably.
fn log_mean_exp(v: &[f64]) -> f64 {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + (v.iter().map(|x| (x - max).exp()).sum::<f64>() / v.len() as f64).ln()
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
