//! The batches of a run, drawn on the host from `(seed, step)` alone, ahead of the loop on their
//! own thread: data, noise, times, the coupling of noise to data (minibatch OT is the costly
//! part), label dropout and the regression targets all overlap with the previous step's forward
//! and backward pass.
//!
//! The path's coefficients `alpha_t, sigma_t, alpha_t', sigma_t'` are evaluated in f64 at each
//! row's time on the host, and only their products with the data are uploaded: a time near 1
//! never rounds to 1 in a low-precision compute type (where VP's `sigma_t` would be 0 and its
//! derivative infinite), and no coefficient is ever rounded.

use super::config::TrainConfig;
use super::run::batch_rng;
use crate::data::DataSource;
use fm_paths::{AffinePath, AnyScheduler, Coupling, Parametrization, Scheduler};
use rand::Rng;
use rand_distr::StandardNormal;
use std::ops::Range;
use std::sync::mpsc::{Receiver, sync_channel};

/// One step's batch, row-major: the network's inputs and what its output should be.
///
/// The loss of a row is `|w out - target|^2` with (`x1` data, `x0` its paired noise):
/// - velocity: `target = alpha_t' x1 + sigma_t' x0` (the CFM target, paper eq. 14), `w = 1`;
/// - x1: `target = x1`; epsilon: `target = x0`;
/// - score: `target = -x0`, `w = sigma_t` (denoising score matching with the usual
///   `lambda(t) = sigma_t^2` weighting: the conditional score is `-x0 / sigma_t`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HostBatch {
    /// `x_t = alpha_t x1 + sigma_t x0`, `[B, D]`.
    pub x_t: Vec<f32>,
    /// The regression target, `[B, D]`.
    pub target: Vec<f32>,
    /// The weight `w` of each row's output, `[B]` (the score's `sigma_t`; none means 1).
    pub weight: Option<Vec<f32>>,
    /// Times `[B]`.
    pub t: Vec<f32>,
    /// Classes `[B]` after label dropout, for a class-conditional network.
    pub labels: Option<Vec<i64>>,
}

impl HostBatch {
    /// The rows `shards` of this batch, one batch each (`shards` split `0..B` in order). One
    /// shard is the batch itself, moved rather than copied.
    pub fn split(self, shards: &[Range<usize>]) -> Vec<HostBatch> {
        if let [whole] = shards
            && *whole == (0..self.t.len())
        {
            return vec![self];
        }
        let dim = self.x_t.len() / self.t.len().max(1);
        let rows = |v: &[f32], r: &Range<usize>, w: usize| v[r.start * w..r.end * w].to_vec();
        shards
            .iter()
            .map(|r| HostBatch {
                x_t: rows(&self.x_t, r, dim),
                target: rows(&self.target, r, dim),
                weight: self.weight.as_ref().map(|w| rows(w, r, 1)),
                t: rows(&self.t, r, 1),
                labels: self.labels.as_ref().map(|y| y[r.clone()].to_vec()),
            })
            .collect()
    }
}

/// Everything a batch depends on besides the step.
#[derive(Debug, Clone)]
pub(crate) struct BatchPlan {
    pub data: DataSource,
    pub config: TrainConfig,
    pub coupling: Coupling,
    pub null_class: Option<usize>,
    pub path: AffinePath<AnyScheduler>,
    pub predict: Parametrization,
}

impl BatchPlan {
    /// The batch of `step`.
    pub fn draw(&self, step: usize) -> HostBatch {
        let (batch, dim) = (self.config.batch_size, self.data.dim());
        let (t_min, t_max) = self.path.scheduler.training_range();
        let mut rng = batch_rng(self.config.seed, step);
        let drawn = self.data.sample_batch(batch, &mut rng, self.config.flip);
        let mut x0: Vec<f32> = (0..batch * dim)
            .map(|_| rng.sample(StandardNormal))
            .collect();
        let t: Vec<f32> = (0..batch)
            .map(|_| (t_min + (t_max - t_min) * rng.random::<f64>()) as f32)
            .collect();
        if self.coupling != Coupling::Independent {
            let classes = drawn
                .labels
                .as_deref()
                .filter(|_| self.null_class.is_some());
            let partner = self
                .coupling
                .pair(&x0, &drawn.points.values, dim, classes, &mut rng);
            x0 = partner
                .iter()
                .flat_map(|&i| x0[i * dim..(i + 1) * dim].iter().copied())
                .collect();
        }
        let labels = self.null_class.zip(drawn.labels).map(|(null, labels)| {
            labels
                .into_iter()
                .map(|y| {
                    let drop = rng.random::<f64>() < self.config.label_dropout;
                    if drop { null as i64 } else { y as i64 }
                })
                .collect()
        });
        let (x_t, target, weight) = self.regression(&drawn.points.values, &x0, &t);
        HostBatch {
            x_t,
            target,
            weight,
            t,
            labels,
        }
    }

    /// `x_t`, the target and the weights of [`HostBatch`], from the data `x1`, the noise `x0`
    /// and the times, with the coefficients in f64.
    fn regression(
        &self,
        x1: &[f32],
        x0: &[f32],
        t: &[f32],
    ) -> (Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
        let dim = x1.len() / t.len().max(1);
        let (mut x_t, mut target) = (Vec::with_capacity(x1.len()), Vec::with_capacity(x1.len()));
        let score = self.predict == Parametrization::Score;
        let mut weight = score.then(|| Vec::with_capacity(t.len()));
        for (row, &time) in t.iter().enumerate() {
            let c = self.path.scheduler.coefficients(time as f64);
            let cols = row * dim..(row + 1) * dim;
            for (&a, &b) in x1[cols.clone()].iter().zip(&x0[cols]) {
                let (a, b) = (a as f64, b as f64);
                x_t.push((c.alpha * a + c.sigma * b) as f32);
                target.push(match self.predict {
                    Parametrization::Velocity => (c.d_alpha * a + c.d_sigma * b) as f32,
                    Parametrization::X1 => a as f32,
                    Parametrization::Epsilon => b as f32,
                    Parametrization::Score => -b as f32,
                });
            }
            if let Some(w) = weight.as_mut() {
                w.push(c.sigma as f32);
            }
        }
        (x_t, target, weight)
    }

    /// Draws the batches of `steps` on a thread of their own, at most two ahead of the receiver
    /// (one waiting in the channel, one being drawn); the thread stops when the receiver is
    /// dropped.
    pub fn spawn(self, steps: std::ops::Range<usize>) -> Receiver<HostBatch> {
        let (tx, rx) = sync_channel(1);
        std::thread::spawn(move || {
            for step in steps {
                if tx.send(self.draw(step)).is_err() {
                    break;
                }
            }
        });
        rx
    }
}
