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
        (cfg!(feature = "cubecl-cpu"), "cubecl-cpu"),
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

/// The device called `name`: `cpu`, `ndarray`, `wgpu[:API]` (API one of auto, vulkan, gl,
/// metal, dx12), `vulkan`, `cuda[:N]` or `cubecl-cpu`.
pub fn parse(name: &str) -> Result<Device> {
    let (kind, suffix) = match name.split_once(':') {
        Some((k, s)) => (k, Some(s)),
        None => (name, None),
    };
    // After `wgpu:` comes a graphics API; after `cuda:`, a device index.
    let (api, index) = match (kind, suffix) {
        ("wgpu", s) => (s, None),
        (_, Some(i)) => (
            None,
            Some(
                i.parse::<usize>()
                    .map_err(|_| anyhow::anyhow!("--device {name}: '{i}' is not a device index"))?,
            ),
        ),
        (_, None) => (None, None),
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
            return wgpu_on(name, api);
            #[allow(unreachable_code)]
            {
                let _ = api;
                missing("wgpu")
            }
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
        "cubecl-cpu" => {
            #[cfg(feature = "cubecl-cpu")]
            return Ok(Device::cpu());
            #[allow(unreachable_code)]
            missing("cubecl-cpu")
        }
        _ => bail!(
            "--device {name}: unknown device; expected one of {}",
            available().join(", ")
        ),
    }
}

/// The graphics APIs `wgpu:API` can name. `wgpu` alone lets wgpu choose; a named one is
/// used or refused, never swapped for another (`wgpu:gl` runs on Mesa's llvmpipe where the
/// machine has no GPU: docs/scaling.md).
#[cfg(feature = "wgpu")]
const WGPU_APIS: [&str; 5] = ["auto", "vulkan", "gl", "metal", "dx12"];

/// The wgpu device on the graphics API `api` (`None`: wgpu's choice).
#[cfg(feature = "wgpu")]
fn wgpu_on(name: &str, api: Option<&str>) -> Result<Device> {
    use burn::tensor::wgpu::WgpuBackend;
    use std::sync::Mutex;

    let api = match api {
        None | Some("auto") => return Ok(Device::wgpu(Default::default())),
        Some("vulkan") => WgpuBackend::Vulkan,
        Some("gl") => WgpuBackend::Gl,
        Some("metal") => WgpuBackend::Metal,
        Some("dx12") => WgpuBackend::Dx12,
        Some(other) => bail!(
            "--device {name}: unknown graphics API '{other}'; expected wgpu or wgpu:API with API one of {}",
            WGPU_APIS.join(", ")
        ),
    };
    // burn starts a pinned API's runtime once per process and refuses a second start, so a
    // name given twice (--devices wgpu:gl,wgpu:gl, or a check after a run) reuses the first.
    static STARTED: Mutex<Vec<(WgpuBackend, Device)>> = Mutex::new(Vec::new());
    let mut started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, device)) = started.iter().find(|(a, _)| *a == api) {
        return Ok(device.clone());
    }
    let device = Device::wgpu_options()
        .graphics_api(api)
        .init()
        .map_err(|e| anyhow::anyhow!("--device {name}: {e}"))?;
    started.push((api, device.clone()));
    Ok(device)
}

/// How far a backend may drift from the CPU: relative to the largest reference value, a few
/// hundred f32 roundings (different summation orders in the matrix products).
pub const AGREEMENT: f64 = 1e-4;

/// How large the networks and batches of a check are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckSize {
    /// The paper's 2-D network (MLP 4x512) on 256 points; the U-Net on 4 images.
    Paper,
    /// An MLP 2x64 on 64 points; the U-Net on 2 images: the same kinds of kernel at sizes a
    /// software driver (Mesa's llvmpipe) gets through in about a minute (the paper-sized check
    /// did not finish there: docs/scaling.md).
    Quick,
}

/// Checks that the backend `name` computes what the CPU (flex) backend computes: see [`compare`].
#[cfg(feature = "flex")]
pub fn check(name: &str, size: CheckSize) -> Result<serde_json::Value> {
    let mut report = compare(&Device::flex(), &parse(name)?, size);
    report["device"] = serde_json::json!(name);
    Ok(report)
}

/// Without the CPU backend there is nothing to compare with.
#[cfg(not(feature = "flex"))]
pub fn check(name: &str, _size: CheckSize) -> Result<serde_json::Value> {
    bail!("--check {name}: this build has no CPU backend (feature flex) to compare with")
}

/// Compares `device` with `reference` on the two networks, weights and inputs drawn on
/// `reference` with a fixed seed, then moved:
/// - a 2-D network (at [`CheckSize::Paper`] the paper's MLP 4x512 on 256 points) at t = 0.3:
///   its velocity and exact divergence (the backward kernels that likelihoods use);
/// - a small image U-Net (8x8 gray images, two levels, attention at 4x4) on 4 images (2 at
///   [`CheckSize::Quick`]): its velocity and the input gradient of `sum(v * eps)`
///   (convolutions, group norm, upsampling and attention, forward and backward).
///
/// See [`agreement`].
pub fn compare(reference: &Device, device: &Device, size: CheckSize) -> serde_json::Value {
    use burn::tensor::{Distribution, Tensor};
    use fm_models::{TimeMlpConfig, UNetConfig};

    let (mlp, points, batch) = match size {
        CheckSize::Paper => (TimeMlpConfig::new(2), 256, 4),
        CheckSize::Quick => (TimeMlpConfig::new(2).with_hidden(64).with_depth(2), 64, 2),
    };
    // Drawn once: both devices see the same weights and points.
    reference.seed(7);
    let model = mlp.init(reference);
    let x = Tensor::<2>::random([points, 2], Distribution::Normal(0.0, 2.0), reference);
    let (v_ref, div_ref) = velocity_and_divergence_on(&model, &x, reference);
    let (v, div) = velocity_and_divergence_on(&model, &x, device);

    let unet = UNetConfig::new(1, 8)
        .with_base_channels(8)
        .with_channel_mult(vec![1, 2])
        .with_res_blocks(1)
        .with_attention_resolutions(vec![4])
        .with_head_channels(8)
        .with_dropout(0.0)
        .with_groups(4)
        .init(reference);
    let images = Tensor::<4>::random([batch, 1, 8, 8], Distribution::Normal(0.0, 1.0), reference);
    let eps = Tensor::<4>::random([batch, 1, 8, 8], Distribution::Normal(0.0, 1.0), reference);
    let (u_ref, g_ref) = unet_velocity_and_vjp_on(&unet, &images, &eps, reference);
    let (u, g) = unet_velocity_and_vjp_on(&unet, &images, &eps, device);
    agreement(&[
        ("velocity", &v, &v_ref),
        ("divergence", &div, &div_ref),
        ("unet_velocity", &u, &u_ref),
        ("unet_vjp", &g, &g_ref),
    ])
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

/// The U-Net's velocity at `images` and t = 0.3, and the gradient of `sum(v * eps)` with
/// respect to `images` (one backward pass, as a divergence probe takes), computed on `device`.
fn unet_velocity_and_vjp_on(
    model: &fm_models::UNet,
    images: &burn::tensor::Tensor<4>,
    eps: &burn::tensor::Tensor<4>,
    device: &Device,
) -> (Vec<f32>, Vec<f32>) {
    use burn::module::Module;
    use burn::tensor::Tensor;

    let model = model.clone().to_device(device);
    let x = images.clone().to_device(device).autodiff().require_grad();
    let t = Tensor::full([x.dims()[0]], 0.3, device);
    let v = model.forward(x.clone(), t, None);
    let grads = (v.clone() * eps.clone().to_device(device)).sum().backward();
    let vjp = x
        .grad(&grads)
        .expect("the U-Net's output depends on its input");
    (
        v.inner().into_data().iter::<f32>().collect(),
        vjp.into_data().iter::<f32>().collect(),
    )
}

/// For each named pair of (values, reference values), the largest difference relative to the
/// largest reference value, as `NAME_rel_diff`; and whether all are within [`AGREEMENT`].
fn agreement(pairs: &[(&str, &[f32], &[f32])]) -> serde_json::Value {
    let rel = |a: &[f32], b: &[f32]| {
        let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-12) as f64;
        // A NaN difference counts as infinite: f64::max would skip it.
        a.iter().zip(b).fold(0f64, |m, (x, y)| {
            let d = (x - y).abs() as f64;
            if d.is_nan() { f64::INFINITY } else { m.max(d) }
        }) / scale
    };
    let mut report = serde_json::Map::new();
    let mut agrees = true;
    for (name, a, b) in pairs {
        // A missing or extra value is a disagreement too, not a shorter comparison.
        let d = if a.len() == b.len() {
            rel(a, b)
        } else {
            f64::INFINITY
        };
        agrees &= d <= AGREEMENT;
        report.insert(format!("{name}_rel_diff"), serde_json::json!(d));
    }
    report.insert("agrees".into(), serde_json::json!(agrees));
    serde_json::Value::Object(report)
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
        let report = compare(&Device::flex(), &ndarray, CheckSize::Paper);
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
        let (v16, short) = (bf16(&v), &v[..511]);
        let report = agreement(&[("velocity", &v16, &v), ("divergence", &div, &div)]);
        assert_eq!(report["agrees"], false, "{report}");
        assert_eq!(report["divergence_rel_diff"], 0.0, "{report}");
        let report = agreement(&[("velocity", short, &v)]);
        assert_eq!(report["agrees"], false, "a missing value: {report}");
        let nan = [f32::NAN; 512];
        assert_eq!(agreement(&[("velocity", &nan, &v)])["agrees"], false);
        assert_eq!(
            agreement(&[("velocity", &v, &v), ("divergence", &div, &div)])["agrees"],
            true
        );
    }
}
