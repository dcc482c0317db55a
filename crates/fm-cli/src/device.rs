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
