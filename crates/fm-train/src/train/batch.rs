//! The batches of a run, drawn on the host from `(seed, step)` alone, ahead of the loop on their
//! own thread: data, noise, times, the coupling of noise to data (minibatch OT is the costly
//! part), and label dropout all overlap with the previous step's forward and backward pass.

use super::config::TrainConfig;
use super::run::batch_rng;
use crate::data::DataSource;
use fm_paths::Coupling;
use rand::Rng;
use rand_distr::StandardNormal;
use std::ops::Range;
use std::sync::mpsc::{Receiver, sync_channel};

/// One step's batch, row-major.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HostBatch {
    /// Data points `[B, D]`.
    pub x1: Vec<f32>,
    /// Source samples `[B, D]`, paired with the data by the coupling.
    pub x0: Vec<f32>,
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
        let dim = self.x1.len() / self.t.len().max(1);
        let rows = |v: &[f32], r: &Range<usize>, w: usize| v[r.start * w..r.end * w].to_vec();
        shards
            .iter()
            .map(|r| HostBatch {
                x1: rows(&self.x1, r, dim),
                x0: rows(&self.x0, r, dim),
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
    pub t_range: (f64, f64),
}

impl BatchPlan {
    /// The batch of `step`.
    pub fn draw(&self, step: usize) -> HostBatch {
        let (batch, dim) = (self.config.batch_size, self.data.dim());
        let (t_min, t_max) = self.t_range;
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
        HostBatch {
            x1: drawn.points.values,
            x0,
            t,
            labels,
        }
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
