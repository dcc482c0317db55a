//! `--device`: picks one of the backends compiled into this build.

use anyhow::{Result, bail};
use burn::tensor::Device;

/// The backends this build can use, as `--device` names.
pub fn available() -> Vec<&'static str> {
    [
        (cfg!(feature = "flex"), "cpu"),
        (cfg!(feature = "ndarray"), "ndarray"),
        (cfg!(feature = "wgpu"), "wgpu"),
        (cfg!(feature = "vulkan"), "vulkan"),
        (cfg!(feature = "cuda"), "cuda"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

/// The device called `name`, computing in the float type `dtype` (`f32`, `f16`, `bf16`) by
/// default. Call it before any tensor exists on that device: burn fixes a device's default
/// type at its first tensor.
pub fn parse_with_dtype(name: &str, dtype: &str) -> Result<Device> {
    let float = fm_train::train::parse_dtype(dtype).map_err(|e| anyhow::anyhow!("--dtype: {e}"))?;
    let mut device = parse(name)?;
    // Already so (the backend's default, or a device named twice in --devices): nothing to set.
    if device.settings().float_dtype != float {
        device
            .configure(float)
            .map_err(|e| anyhow::anyhow!("--dtype {dtype} on {name}: {e:?}"))?;
    }
    Ok(device)
}

/// The device called `name` (`cpu`, `ndarray`, `wgpu`, `vulkan`, `cuda[:N]`).
pub fn parse(name: &str) -> Result<Device> {
    let (kind, index) = match name.split_once(':') {
        Some((k, i)) => (
            k,
            Some(
                i.parse::<usize>()
                    .map_err(|_| anyhow::anyhow!("--device {name}: '{i}' is not a device index"))?,
            ),
        ),
        None => (name, None),
    };
    let missing = |feature: &str| -> Result<Device> {
        bail!(
            "--device {name}: this build has no {feature} backend; rebuild with `--features {feature}` (available here: {})",
            available().join(", ")
        )
    };
    match kind {
        "cpu" | "flex" => {
            #[cfg(feature = "flex")]
            return Ok(Device::flex());
            #[allow(unreachable_code)]
            missing("flex")
        }
        "ndarray" => {
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            return Ok(Device::ndarray());
            #[allow(unreachable_code)]
            missing("ndarray")
        }
        "wgpu" => {
            #[cfg(feature = "wgpu")]
            return Ok(Device::wgpu(Default::default()));
            #[allow(unreachable_code)]
            missing("wgpu")
        }
        "vulkan" => {
            #[cfg(feature = "vulkan")]
            return Ok(Device::vulkan(Default::default()));
            #[allow(unreachable_code)]
            missing("vulkan")
        }
        "cuda" => {
            #[cfg(feature = "cuda")]
            return Ok(Device::cuda(index.unwrap_or(0)));
            #[allow(unreachable_code)]
            {
                let _ = index;
                missing("cuda")
            }
        }
        _ => bail!(
            "--device {name}: unknown device; expected one of {}",
            available().join(", ")
        ),
    }
}

/// How far a backend may drift from the CPU: relative to the largest reference value, a few
/// hundred f32 roundings (different summation orders in the matrix products).
pub const AGREEMENT: f64 = 1e-4;

/// Checks that `device` computes what the CPU backend computes: the paper's 2-D network (MLP
/// 4x512, weights and inputs drawn on the CPU with a fixed seed) on 256 points at t = 0.3, its
/// velocity and
/// exact divergence (the backward kernels that likelihoods use). Returns the largest
/// differences, relative to the largest reference value.
#[cfg(feature = "flex")]
pub fn check(name: &str) -> Result<serde_json::Value> {
    use burn::module::Module;
    use burn::tensor::{Distribution, Tensor};
    use fm_models::TimeMlpConfig;
    use fm_ode::divergence::velocity_and_divergence;
    use fm_ode::{Divergence, Probes};

    let cpu = Device::flex();
    let run = |dev: &Device| -> (Vec<f32>, Vec<f32>) {
        cpu.seed(7);
        let model = TimeMlpConfig::new(2).init(&cpu).to_device(dev);
        let x = Tensor::<2>::random([256, 2], Distribution::Normal(0.0, 2.0), &cpu).to_device(dev);
        let probes = Probes::new(Divergence::Exact, [256, 2], dev);
        let field = |x: Tensor<2>| {
            let t = Tensor::full([x.dims()[0]], 0.3, &x.device());
            model.forward(x, t)
        };
        let (v, div) = velocity_and_divergence(field, &x, &probes);
        (
            v.into_data().iter::<f32>().collect(),
            div.into_data().iter::<f32>().collect(),
        )
    };
    let (v_ref, div_ref) = run(&cpu);
    let (v, div) = run(&parse(name)?);
    let rel = |a: &[f32], b: &[f32]| {
        let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-12) as f64;
        a.iter()
            .zip(b)
            .fold(0f64, |m, (x, y)| m.max((x - y).abs() as f64))
            / scale
    };
    let (dv, dd) = (rel(&v, &v_ref), rel(&div, &div_ref));
    Ok(serde_json::json!({
        "device": name,
        "velocity_rel_diff": dv,
        "divergence_rel_diff": dd,
        "agrees": dv <= AGREEMENT && dd <= AGREEMENT,
    }))
}

/// Without the CPU backend there is nothing to compare with.
#[cfg(not(feature = "flex"))]
pub fn check(name: &str) -> Result<serde_json::Value> {
    bail!("--check {name}: this build has no CPU backend (feature flex) to compare with")
}
