//! Weights that travel: a run's network as a safetensors file in PyTorch's names and layouts,
//! and a network trained elsewhere (PyTorch) made into a run that sampling, likelihoods and
//! evaluation use.
//!
//! The layout is burn-store's PyTorch convention: parameter paths without the network's enum
//! variant (`time_mlp.layers.0.weight`, not `Mlp.time_mlp...`), linear weights transposed to
//! `[out, in]`, group norms' `gamma`/`beta` named `weight`/`bias`. The file's metadata carries
//! the run's whole `config.json` under [`CONFIG_KEY`], the network's settings under
//! [`ARCH_KEY`] and the path under [`PATH_KEY`], so an exported file imports with no flags. In
//! Python:
//!
//! ```python
//! from safetensors import safe_open
//! from safetensors.torch import load_file
//! import json
//! weights = load_file("model.safetensors")             # {name: torch.Tensor}
//! with safe_open("model.safetensors", "pt") as f:
//!     config = json.loads(f.metadata()["fm.config"])    # the run's config.json
//! model.load_state_dict(weights)                        # a module with the same names
//! ```

use crate::train::{
    CheckpointState, TrainConfig, TrainError, clear_run, holds_run, save_checkpoint,
    write_atomically,
};
use burn::optim::AdamConfig;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::Device;
use fm_models::VelocityNet;
use std::path::Path;

/// Metadata key of the run's `config.json` (JSON).
pub const CONFIG_KEY: &str = "fm.config";
/// Metadata key of the network's settings (the config's `model`, JSON).
pub const ARCH_KEY: &str = "fm.arch";
/// Metadata key of the probability path (`ot`, `vp`, ...) the network was trained on.
pub const PATH_KEY: &str = "fm.path";
/// Metadata key of what the network predicts (`v`, `x1`, `eps`, `score`).
pub const PREDICT_KEY: &str = "fm.predict";

/// Writes `model`, trained with `config`, to the safetensors file `out` in PyTorch's layout,
/// with the config in the metadata. An existing file is never overwritten.
pub fn export_safetensors(
    model: &VelocityNet,
    config: &TrainConfig,
    out: &Path,
) -> Result<(), TrainError> {
    if out.exists() {
        return Err(io_err(
            out,
            "already exists: choose another --out or remove it".into(),
        ));
    }
    let mut store = SafetensorsStore::from_file(out)
        .skip_enum_variants(true)
        .with_to_adapter(BurnToPyTorchAdapter)
        .metadata(CONFIG_KEY, json(config))
        .metadata(ARCH_KEY, json(&config.model))
        .metadata(PATH_KEY, config.path.to_string())
        .metadata(PREDICT_KEY, config.predict.to_string());
    model
        .clone()
        .save_into(&mut store)
        .map_err(|e| io_err(out, format!("cannot write the weights: {e}")))
}

/// The run config stored in an exported file's metadata, if it has one. Reads only the
/// file's header (the tensors are read once, by the import itself).
pub fn exported_config(file: &Path) -> Result<Option<TrainConfig>, TrainError> {
    let header = safetensors_header(file)?;
    let Some(text) = header["__metadata__"][CONFIG_KEY].as_str() else {
        return Ok(None);
    };
    serde_json::from_str(text).map(Some).map_err(|e| {
        io_err(
            file,
            format!("its {CONFIG_KEY} metadata is not a run config: {e}"),
        )
    })
}

/// Makes the run folder `run` from the weights in `file` (PyTorch layout, as
/// [`export_safetensors`] writes them) for a network of `config`: its `config.json` and one
/// checkpoint at step 0 whose model and EMA are the weights (and a fresh optimizer state).
/// Every parameter of the network must be in the file with its shape; a folder holding a run
/// is refused unless `force`.
pub fn import_safetensors(
    file: &Path,
    config: &TrainConfig,
    run: &Path,
    device: &Device,
    force: bool,
) -> Result<VelocityNet, TrainError> {
    config.validate().map_err(TrainError::Config)?;
    let model = load_safetensors(file, config, device)?;
    if holds_run(run)? {
        if !force {
            return Err(TrainError::Config(format!(
                "{} already holds a run: replace it with --force, or choose another output folder",
                run.display()
            )));
        }
        clear_run(run)?;
    }
    std::fs::create_dir_all(run).map_err(|e| io_err(run, e.to_string()))?;
    let json = serde_json::to_vec_pretty(config).expect("config serialises");
    write_atomically(&run.join("config.json"), &json)?;
    let state = CheckpointState {
        step: 0,
        loss: None,
        checksums: Default::default(),
    };
    let optim = AdamConfig::new().init();
    save_checkpoint(run, &state, &model, &model, &optim, config.keep_checkpoints)?;
    Ok(model)
}

/// The network of `config` with the weights of `file` (PyTorch layout) on `device`.
pub fn load_safetensors(
    file: &Path,
    config: &TrainConfig,
    device: &Device,
) -> Result<VelocityNet, TrainError> {
    if !file.is_file() {
        return Err(io_err(file, "no such file".into()));
    }
    let mut model = config.model.init(device);
    let mut store = SafetensorsStore::from_file(file)
        .skip_enum_variants(true)
        .with_from_adapter(PyTorchToBurnAdapter)
        .allow_partial(false)
        .validate(true);
    let result = model.load_from(&mut store).map_err(|e| {
        io_err(
            file,
            format!("the weights do not fit the network of the config: {e}"),
        )
    })?;
    let missing = result
        .missing
        .iter()
        .map(|(name, _)| format!("{name} is missing"));
    let unused = result
        .unused
        .iter()
        .map(|name| format!("{name} is not in the network"));
    let errors = result.errors.iter().map(|e| format!("{e:?}"));
    let faults: Vec<String> = missing.chain(unused).chain(errors).collect();
    if !faults.is_empty() {
        let shown = faults.len().min(6);
        return Err(io_err(
            file,
            format!(
                "the weights do not fit the network of the config ({} faults): {}{}",
                faults.len(),
                faults[..shown].join("; "),
                if faults.len() > shown { "; ..." } else { "" }
            ),
        ));
    }
    Ok(model)
}

/// The JSON header of a safetensors file: a little-endian u64 length, then that many bytes.
fn safetensors_header(file: &Path) -> Result<serde_json::Value, TrainError> {
    use std::io::Read;
    /// safetensors' own limit on the header.
    const MAX_HEADER: u64 = 100_000_000;
    let not_safetensors = |why: String| io_err(file, format!("not a safetensors file: {why}"));
    let mut f = std::fs::File::open(file).map_err(|e| io_err(file, e.to_string()))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|e| not_safetensors(format!("no header length ({e})")))?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER {
        return Err(not_safetensors(format!("header length {len} is too large")));
    }
    let mut header = vec![0u8; len as usize];
    f.read_exact(&mut header)
        .map_err(|e| not_safetensors(format!("the header is cut short ({e})")))?;
    serde_json::from_slice(&header).map_err(|e| not_safetensors(format!("header: {e}")))
}

fn io_err(path: &Path, message: String) -> TrainError {
    TrainError::Io {
        path: path.to_path_buf(),
        message,
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("configs serialise")
}
