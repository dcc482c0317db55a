//! `metrics.jsonl`: a line every `log_every` steps with the mean loss since the last line, one
//! for every skipped step, and one at every checkpoint.

use super::run::write_atomically;
use super::{TrainError, file_err};
use burn::tensor::Tensor;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The open metrics file (none on the ranks other than 0 of a group) and the losses not yet
/// logged.
pub(super) struct Metrics {
    file: Option<(File, PathBuf)>,
    pending: LossLog,
    /// The last logged mean loss (NaN before the first line).
    pub loss: f64,
}

impl Metrics {
    /// Opens `run/metrics.jsonl` for appending after dropping lines beyond `step` (left by a
    /// run that stopped between checkpoints); `loss` is the last logged loss so far.
    pub fn open(run: &Path, step: usize, loss: f64) -> Result<Self, TrainError> {
        let path = run.join("metrics.jsonl");
        truncate_metrics(&path, step)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(file_err(&path))?;
        Ok(Self {
            file: Some((file, path)),
            pending: LossLog::default(),
            loss,
        })
    }

    /// Means of the losses as [`open`](Self::open) keeps them, written nowhere: the other ranks
    /// of a group, whose rank 0 writes the file.
    pub fn unwritten(loss: f64) -> Self {
        Self {
            file: None,
            pending: LossLog::default(),
            loss,
        }
    }

    /// Adds a taken step's loss to the next line's mean.
    pub fn add(&mut self, loss: Tensor<1>) {
        self.pending.add(loss);
    }

    /// Writes step `done`'s line when it is due: a skipped step always, otherwise every
    /// `log_every` steps and when `flush` (a checkpoint) asks; `flush` also syncs the file.
    pub fn record(&mut self, done: usize, line: Line, flush: bool) -> Result<(), TrainError> {
        let Line {
            lr,
            elapsed_s,
            skipped,
            log_every,
        } = line;
        let text = if skipped {
            Some(format!(
                "{{\"step\":{done},\"loss\":null,\"skipped\":true,\"lr\":{lr},\"wall_s\":{elapsed_s:.3}}}"
            ))
        } else if done.is_multiple_of(log_every) || flush {
            self.loss = self.pending.take_mean();
            Some(format!(
                "{{\"step\":{done},\"loss\":{},\"lr\":{lr},\"wall_s\":{elapsed_s:.3}}}",
                self.loss
            ))
        } else {
            None
        };
        let Some((file, path)) = &mut self.file else {
            return Ok(());
        };
        if let Some(text) = text {
            writeln!(file, "{text}").map_err(file_err(path))?;
        }
        if flush {
            file.flush().map_err(file_err(path))?;
        }
        Ok(())
    }
}

/// What a step's line says besides its number and loss.
pub(super) struct Line {
    pub lr: f64,
    pub elapsed_s: f64,
    pub skipped: bool,
    pub log_every: usize,
}

/// The losses of the steps since the last metrics line, summed where they were computed.
#[derive(Default)]
struct LossLog {
    sum: Option<Tensor<1>>,
    steps: usize,
}

impl LossLog {
    fn add(&mut self, loss: Tensor<1>) {
        self.sum = Some(match self.sum.take() {
            Some(sum) => sum + loss,
            None => loss,
        });
        self.steps += 1;
    }

    /// The mean loss since the last call (one read-back), or NaN when no step was taken.
    fn take_mean(&mut self) -> f64 {
        let steps = std::mem::take(&mut self.steps);
        self.sum
            .take()
            .map_or(f64::NAN, |sum| sum.into_scalar::<f64>() / steps as f64)
    }
}

/// Drops metric lines beyond `step`.
fn truncate_metrics(file: &Path, step: usize) -> Result<(), TrainError> {
    if !file.exists() {
        return Ok(());
    }
    let text = std::fs::read_to_string(file).map_err(file_err(file))?;
    let kept: String = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s as usize <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    write_atomically(file, kept.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn lines(run: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(run.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Lines every `log_every` steps with the mean loss since the last line, one for a skipped
    /// step (its loss null), one when a checkpoint flushes; reopening at a step drops what lies
    /// beyond it.
    #[test]
    fn lines_carry_interval_means_skips_and_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let dev = Device::flex();
        let mut m = Metrics::open(dir.path(), 0, f64::NAN).unwrap();
        let line = |skipped| Line {
            lr: 0.1,
            elapsed_s: 1.0,
            skipped,
            log_every: 3,
        };
        for (step, loss) in [(1, 1.0), (2, 2.0), (3, 6.0), (4, 4.0)] {
            m.add(Tensor::from_floats([loss], &dev));
            m.record(step, line(false), false).unwrap();
        }
        m.record(5, line(true), false).unwrap();
        m.record(6, line(false), true).unwrap();
        let got = lines(dir.path());
        let summary: Vec<(u64, Option<f64>)> = got
            .iter()
            .map(|v| (v["step"].as_u64().unwrap(), v["loss"].as_f64()))
            .collect();
        assert_eq!(summary, [(3, Some(3.0)), (5, None), (6, Some(4.0))]);
        assert_eq!(got[1]["skipped"], true);
        assert_eq!(m.loss, 4.0);

        drop(m);
        Metrics::open(dir.path(), 5, 4.0).unwrap();
        assert_eq!(lines(dir.path()).len(), 2, "lines past step 5 are dropped");
    }
}
