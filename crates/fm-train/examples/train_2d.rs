//! Trains OT flow matching on a 2-D toy from code (the library, not the `fm` command), then
//! samples, and evaluates the NLL against the toy's exact density.
//!
//! `cargo run -p fm-train --release --example train_2d -- [STEPS]` (default 300 steps)

use burn::tensor::Device;
use fm_models::{NetConfig, TimeMlpConfig};
use fm_ode::{Divergence, SolverConfig};
use fm_train::data::{DataSource, Split};
use fm_train::eval::{energy_distance, load_run};
use fm_train::train::{TrainConfig, train};
use rand::SeedableRng;
use std::ops::ControlFlow;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let steps = std::env::args().nth(1).map_or(Ok(300), |s| s.parse())?;
    let run = tempfile::tempdir()?;
    let mut config = TrainConfig::new("8gaussians", 2);
    config.model = NetConfig::Mlp(TimeMlpConfig::new(2).with_hidden(128).with_depth(3));
    (config.steps, config.batch_size, config.checkpoint_every) = (steps, 1024, steps);
    let dev = Device::flex();
    let summary = train(
        &config,
        run.path(),
        std::slice::from_ref(&dev),
        false,
        &mut |p| {
            if p.step % 100 == 0 {
                println!("step {:>5}  loss {:.4}", p.step, p.loss);
            }
            ControlFlow::Continue(())
        },
    )?;
    println!(
        "trained {} steps at {:.1} steps/s",
        summary.step, summary.steps_per_s
    );

    let trained = load_run(run.path(), &dev, false)?;
    let solver = SolverConfig::dopri5(1e-5, 1e-5);
    let (samples, stats) = trained.sample(2000, 2000, &solver, &dev, None)?;
    let data = DataSource::parse_split(&trained.config.data, Split::Test)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let reference = data.sample(2000, &mut rng);
    println!(
        "samples: NFE {}, energy distance to the data {:.4}",
        stats[0].nfe,
        energy_distance(&samples, &reference)
    );
    let points = data.sample(500, &mut rng);
    let (nll, _) = trained.nll(&points, 500, Divergence::Exact, &solver, &dev)?;
    let mean = nll.iter().sum::<f64>() / nll.len() as f64;
    let floor = data.entropy().expect("a toy knows its entropy");
    println!("NLL {mean:.3} nats (the data's entropy, the floor: {floor:.3})");
    Ok(())
}
