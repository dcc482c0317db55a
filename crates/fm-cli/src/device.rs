//! `--device`: picks one of the backends compiled into this build.

use anyhow::{Result, bail};
use burn::tensor::Device;
use fm_train::train::FloatType;

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

/// The device called `name`, computing in the float type `dtype` by default. Call it before any
/// tensor exists on that device: burn fixes a device's default type at its first tensor.
pub fn parse_with_dtype(name: &str, dtype: FloatType) -> Result<Device> {
    let float = dtype.dtype();
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

/// Checks that the backend `name` computes what the CPU (flex) backend computes: see [`compare`].
#[cfg(feature = "flex")]
pub fn check(name: &str) -> Result<serde_json::Value> {
    let mut report = compare(&Device::flex(), &parse(name)?);
    report["device"] = serde_json::json!(name);
    Ok(report)
}

/// Without the CPU backend there is nothing to compare with.
#[cfg(not(feature = "flex"))]
pub fn check(name: &str) -> Result<serde_json::Value> {
    bail!("--check {name}: this build has no CPU backend (feature flex) to compare with")
}

/// Compares `device` with `reference` on the paper's 2-D network (MLP 4x512, weights and inputs
/// drawn on `reference` with a fixed seed, then moved) on 256 points at t = 0.3: its velocity
/// and exact divergence (the backward kernels that likelihoods use). See [`agreement`].
pub fn compare(reference: &Device, device: &Device) -> serde_json::Value {
    use burn::tensor::{Distribution, Tensor};
    use fm_models::TimeMlpConfig;

    // Drawn once: both devices see the same weights and points.
    reference.seed(7);
    let model = TimeMlpConfig::new(2).init(reference);
    let x = Tensor::<2>::random([256, 2], Distribution::Normal(0.0, 2.0), reference);
    let (v_ref, div_ref) = velocity_and_divergence_on(&model, &x, reference);
    let (v, div) = velocity_and_divergence_on(&model, &x, device);
    agreement(&v, &v_ref, &div, &div_ref)
}

/// The velocity and exact divergence of `model` at `x` and t = 0.3, computed on `device`.
fn velocity_and_divergence_on(
    model: &fm_models::TimeMlp,
    x: &burn::tensor::Tensor<2>,
    device: &Device,
) -> (Vec<f32>, Vec<f32>) {
    use burn::module::Module;
    use burn::tensor::Tensor;
    use fm_ode::divergence::velocity_and_divergence;
    use fm_ode::{Divergence, Probes};

    let model = model.clone().to_device(device);
    let x = x.clone().to_device(device);
    let probes = Probes::new(Divergence::Exact, x.dims(), device);
    let field = |x: Tensor<2>| {
        let t = Tensor::full([x.dims()[0]], 0.3, &x.device());
        model.forward(x, t)
    };
    let (v, div) = velocity_and_divergence(field, &x, &probes);
    (
        v.into_data().iter::<f32>().collect(),
        div.into_data().iter::<f32>().collect(),
    )
}

/// The largest differences of velocities and divergences from the reference ones, relative to
/// the largest reference value, and whether both are within [`AGREEMENT`].
fn agreement(v: &[f32], v_ref: &[f32], div: &[f32], div_ref: &[f32]) -> serde_json::Value {
    let rel = |a: &[f32], b: &[f32]| {
        let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-12) as f64;
        a.iter()
            .zip(b)
            .fold(0f64, |m, (x, y)| m.max((x - y).abs() as f64))
            / scale
    };
    let (dv, dd) = (rel(v, v_ref), rel(div, div_ref));
    serde_json::json!({
        "velocity_rel_diff": dv,
        "divergence_rel_diff": dd,
        "agrees": dv <= AGREEMENT && dd <= AGREEMENT,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two distinct CPU backends (flex's gemm and ndarray's matrixmultiply, weights and points
    /// moved across) agree to a few f32 roundings.
    #[test]
    fn flex_and_ndarray_agree() {
        #[allow(deprecated)]
        let ndarray = Device::ndarray();
        let report = compare(&Device::flex(), &ndarray);
        eprintln!("{report}");
        assert_eq!(report["agrees"], true, "{report}");
        let dv = report["velocity_rel_diff"].as_f64().unwrap();
        assert!(
            dv > 0.0,
            "two backends summing in another order differ a little: {report}"
        );
    }

    /// The check fails on values of bf16 accuracy (a wrong kernel, or a device computing in
    /// another type than asked).
    #[test]
    fn the_check_can_fail() {
        let v: Vec<f32> = (0..512).map(|i| 3.0 * (i as f32 * 0.37).sin()).collect();
        let div: Vec<f32> = (0..256).map(|i| (i as f32 * 0.11).cos()).collect();
        let bf16 = |x: &[f32]| -> Vec<f32> {
            x.iter()
                .map(|&a| f32::from_bits(a.to_bits() & 0xFFFF_0000))
                .collect()
        };
        let report = agreement(&bf16(&v), &v, &div, &div);
        assert_eq!(report["agrees"], false, "{report}");
        assert_eq!(agreement(&v, &v, &div, &div)["agrees"], true);
    }
}
