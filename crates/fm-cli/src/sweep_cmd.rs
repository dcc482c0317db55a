//! `fm sweep`: error of solvers with fixed steps against NFE for one or more runs (the paper's
//! Figure 7), as JSON and as a log-log chart.

use crate::chart::{Panel, Series, log_log_panels};
use crate::{Common, at_least_one, device};
use anyhow::{Result, bail};
use clap::Args;
use fm_ode::{Method, SolverConfig, Sweep, error_vs_nfe};
use fm_train::eval::load_run;
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Args, Clone)]
pub struct SweepArgs {
    /// Run folders to compare (repeat the flag); each is labelled by its folder name.
    #[arg(long, required = true)]
    run: Vec<PathBuf>,
    /// Source points integrated by every solver.
    #[arg(long, default_value_t = 1000, value_parser = at_least_one())]
    n: usize,
    /// Methods, comma-separated, each run with fixed steps (dopri5 too)
    /// [default: euler,midpoint,rk4].
    #[arg(long, value_delimiter = ',')]
    methods: Option<Vec<Method>>,
    /// Evaluation budgets, comma-separated; each becomes round(NFE / evaluations per step) steps
    /// (dopri5: 6 per step, plus one)
    /// [default: 4,6,8,10,14,20,28,40,56,80,100].
    #[arg(long, value_delimiter = ',')]
    nfe: Option<Vec<usize>>,
    /// Steps of the RK4 reference solution, 4 evaluations each [default: 250].
    #[arg(long, value_parser = at_least_one())]
    reference_steps: Option<usize>,
    /// Seed of the source points (the same points for every run).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the error-against-NFE chart (one panel per method) to this PNG.
    #[arg(long)]
    png: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

pub fn cmd_sweep(a: &SweepArgs) -> Result<Value> {
    let mut sweep = Sweep::figure7();
    if let Some(methods) = &a.methods {
        sweep.methods = methods.clone();
    }
    if let Some(nfe) = &a.nfe {
        sweep.nfe = nfe.clone();
    }
    if let Some(steps) = a.reference_steps {
        sweep.reference = SolverConfig::fixed(Method::Rk4, steps);
    }
    if sweep.nfe.contains(&0) {
        bail!("--nfe: budgets must be positive");
    }
    let device = device::parse(&a.common.device)?;
    let mut runs = Vec::new();
    let mut curves = Vec::new();
    for run in &a.run {
        let trained = load_run(run, &device, false)?;
        device.seed(a.seed);
        let field = |t: f64, x: &burn::tensor::Tensor<2>| trained.velocity(x.clone(), t);
        let (points, reference_nfe) =
            error_vs_nfe(&field, trained.noise(a.n, &device), 0.0, 1.0, &sweep)?;
        let label = run
            .file_name()
            .map_or_else(|| run.display().to_string(), |s| s.to_string_lossy().into());
        runs.push(json!({
            "run": run,
            "label": label,
            "reference_nfe": reference_nfe,
            "points": points.iter().map(|p| json!({
                "method": p.method.name(),
                "steps": p.steps,
                "nfe": p.nfe,
                "rms_error": p.rms_error,
            })).collect::<Vec<_>>(),
        }));
        curves.push((label, points));
    }
    if let Some(png) = &a.png {
        let panels: Vec<Panel> = sweep
            .methods
            .iter()
            .map(|&m| Panel {
                title: m.name().to_string(),
                series: curves
                    .iter()
                    .map(|(label, points)| Series {
                        label: label.clone(),
                        points: points
                            .iter()
                            .filter(|p| p.method == m)
                            .map(|p| (p.nfe as f64, p.rms_error))
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        log_log_panels(png, &panels, "NFE", "RMS error vs reference")?;
    }
    Ok(json!({
        "points": a.n,
        "reference": format!(
            "{} with {} NFE",
            sweep.reference.method,
            runs.first().map_or(Value::Null, |r| r["reference_nfe"].clone())
        ),
        "runs": runs,
        "png": a.png,
    }))
}
