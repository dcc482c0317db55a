//! `fm sample`: draw samples from a trained run, as arrays and pictures, optionally with their
//! paths from noise to data.

use crate::eval_cmd::{SolverArgs, mean_nfe, with_checkpoint};
use crate::{Common, at_least_one, device, plot};
use anyhow::{Context, Result, bail};
use clap::Args;
use fm_ode::SaveAt;
use fm_train::data::{DataSource, NpyType, NpyWriter, Points, to_pixels_nhwc, write_npy};
use fm_train::eval::{Guidance, Paths, TrainedRun, straightness};
use fm_train::train::FloatType;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Clone)]
pub struct SampleArgs {
    /// The run folder.
    #[arg(long)]
    run: PathBuf,
    /// Number of samples.
    #[arg(long, default_value_t = 10_000, value_parser = at_least_one())]
    n: usize,
    /// Write the samples as an .npy file: [n, D] float32 for points, [n, H, W, C] uint8 for
    /// images (the layout FID tools read). Streamed batch by batch: memory does not grow with n.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write a picture: 2-D samples beside data (the first 100 000), or a grid of images (one row
    /// per class for a class-conditional run; at most 2 500 images).
    #[arg(long)]
    png: Option<PathBuf>,
    /// Classifier-free guidance weight w of a class-conditional run: 0 unconditional,
    /// 1 conditional, above 1 guided (Meta's cfg_scale is w - 1). [default: 1]
    #[arg(long)]
    guidance: Option<f64>,
    /// Sample only this class (class-conditional runs). [default: every class in turn]
    #[arg(long)]
    class: Option<usize>,
    /// Seed of the source noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also save the paths of the first (up to 1000) samples from noise to data at 41 times as
    /// an .npy file ([41, n, D] float32), and report their straightness. They come from the
    /// same solves as the samples (same noise, guidance and steps; states between steps are
    /// interpolated), and end at the samples written.
    #[arg(long)]
    save_trajectories: Option<PathBuf>,
    /// Draw the saved paths: lines for 2-D points, rows of images from noise to data for images.
    #[arg(long, requires = "save_trajectories")]
    trajectory_png: Option<PathBuf>,
    /// Float type to sample in: f32, f16 or bf16 (weights are converted on loading); the
    /// samples are written as float32.
    #[arg(long, default_value = "f32")]
    dtype: FloatType,
    #[command(flatten)]
    solver: SolverArgs,
    #[command(flatten)]
    pub common: Common,
}

/// The most images a grid picture shows.
const MAX_GRID: usize = 2500;
/// The most 2-D samples a picture shows (the rest still go to --out).
const MAX_POINTS: usize = 100_000;

/// `k + 1` evenly spaced times from 0 to 1.
pub fn trajectory_times(k: usize) -> Vec<f64> {
    (0..=k).map(|i| i as f64 / k as f64).collect()
}

/// The classes to sample and the grid width: every class in turn, `ceil(n / classes)` of each
/// (one grid row per class), or all of one class.
fn guidance(
    trained: &TrainedRun,
    n: usize,
    class: Option<usize>,
    w: Option<f64>,
) -> Result<(Option<Guidance>, Option<usize>)> {
    let Some(classes) = trained.config.model.num_classes() else {
        if class.is_some() || w.is_some() {
            bail!("--class and --guidance need a class-conditional run (fm train --conditional)");
        }
        return Ok((None, None));
    };
    let weight = w.unwrap_or(1.0);
    Ok(match class {
        Some(k) if k >= classes => bail!("--class {k}: the run has classes 0..{}", classes - 1),
        Some(k) => (
            Some(Guidance {
                classes: vec![k; n],
                weight,
            }),
            None,
        ),
        None => {
            let per = n.div_ceil(classes);
            let classes = (0..n).map(|i| i / per).collect();
            (Some(Guidance { classes, weight }), Some(per))
        }
    })
}

/// Writes `samples` as a picture: images in a grid of `cols`, or 2-D points beside data.
fn picture(
    trained: &TrainedRun,
    samples: &Points,
    cols: Option<usize>,
    seed: u64,
    png: &Path,
) -> Result<()> {
    if let Some(shape) = trained.config.model.image_shape() {
        let [c, h, w] = shape;
        let cols = cols.unwrap_or_else(|| (samples.len() as f64).sqrt().ceil() as usize);
        return plot::image_grid(
            &to_pixels_nhwc(&samples.values, shape),
            [h, w, c],
            cols,
            png,
        );
    }
    if samples.dim != 2 {
        bail!(
            "--png draws 2-D points or images; this run's data has {} dimensions",
            samples.dim
        );
    }
    let data = DataSource::parse(&trained.config.data)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    plot::samples_beside_data(samples, &data.sample(samples.len(), &mut rng), png)
}

pub fn cmd_sample(a: &SampleArgs) -> Result<Value> {
    let device = device::parse_with_dtype(&a.common.device, a.dtype)?;
    device.seed(a.seed);
    let trained = a.solver.load(&a.run, &device)?;
    let (guide, cols) = guidance(&trained, a.n, a.class, a.guidance)?;
    let shape = trained.config.model.image_shape();
    if shape.is_some() && a.png.is_some() && a.n > MAX_GRID {
        bail!("--png draws at most {MAX_GRID} images; ask for fewer with --n");
    }
    let mut writer = match &a.out {
        Some(out) => Some(
            match shape {
                Some([c, h, w]) => NpyWriter::create(out, NpyType::U8, &[a.n, h, w, c]),
                None => {
                    NpyWriter::create(out, NpyType::F32, &[a.n, trained.config.model.data_dim()])
                }
            }
            .with_context(|| format!("writing {}", out.display()))?,
        ),
        None => None,
    };
    // Batches stream to the file; only what the picture shows is kept.
    let keep = if a.png.is_some() {
        a.n.min(MAX_POINTS)
    } else {
        0
    };
    let mut shown = Points {
        values: Vec::new(),
        dim: trained.config.model.data_dim(),
    };
    // The paths are those of the first samples written, from the same solves.
    let times = trajectory_times(40);
    let mut paths = a
        .save_trajectories
        .is_some()
        .then(|| Paths::new(a.n.min(1000)));
    let config = match paths {
        Some(_) => a.solver.config().saving(SaveAt::Times(times.clone())),
        None => a.solver.config(),
    };
    let began = Instant::now();
    let stats = trained.sample_each(
        a.n,
        a.solver.batch,
        &config,
        &device,
        guide.as_ref(),
        |batch| -> Result<()> {
            let points = batch.samples;
            if let Some(w) = writer.as_mut() {
                match shape {
                    Some(shape) => w.write_u8(&to_pixels_nhwc(&points.values, shape)),
                    None => w.write_f32(&points.values),
                }
                .context("writing the samples")?;
            }
            let room = (keep - shown.len()).min(points.len()) * points.dim;
            shown.values.extend_from_slice(&points.values[..room]);
            if let Some(paths) = paths.as_mut() {
                paths.add(&batch.saved);
            }
            Ok(())
        },
    )?;
    let secs = began.elapsed().as_secs_f64();
    if let Some(w) = writer {
        w.finish().context("writing the samples")?;
    }
    if let Some(png) = &a.png {
        picture(&trained, &shown, cols, a.seed, png)?;
    }
    let report = json!({ "n": a.n, "nfe": mean_nfe(&stats), "samples_per_s": a.n as f64 / secs, "seconds": secs });
    let mut report = with_checkpoint(report, &trained);
    if let Some(g) = &guide {
        report["guidance"] = json!(g.weight);
    }
    if let (Some(path), Some(paths)) = (&a.save_trajectories, paths) {
        let states = paths.states;
        let values: Vec<f32> = states
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .collect();
        write_npy(
            path,
            &values,
            &[states.len(), states[0].len(), states[0].dim],
        )
        .with_context(|| format!("writing {}", path.display()))?;
        if let Some(png) = &a.trajectory_png {
            match shape {
                Some(shape) => image_paths(&states, shape, png)?,
                None => plot::trajectories(&states, png)?,
            }
        }
        report["straightness"] = json!(straightness(&states, &times));
    }
    Ok(report)
}

/// Up to 8 image paths, one per row, at every fourth saved time (t = 0, 0.1, ..., 1).
fn image_paths(states: &[Points], [c, h, w]: [usize; 3], png: &Path) -> Result<()> {
    let shown: Vec<&Points> = states.iter().step_by(4).collect();
    let rows = states[0].len().min(8);
    let size = c * h * w;
    let values: Vec<f32> = (0..rows)
        .flat_map(|r| {
            shown
                .iter()
                .flat_map(move |s| &s.values[r * size..(r + 1) * size])
        })
        .copied()
        .collect();
    plot::image_grid(
        &to_pixels_nhwc(&values, [c, h, w]),
        [h, w, c],
        shown.len(),
        png,
    )
}
