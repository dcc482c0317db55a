//! Weights that travel: export to safetensors in PyTorch's layout and import back give the same
//! velocity; the file reads with the `safetensors` crate's own parser (not burn-store) with
//! PyTorch's names and `[out, in]` linear weights; a file that does not fit is refused with the
//! file and the tensors named; nothing is overwritten.

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Device, Tensor, TensorData};
use fm_models::{NetConfig, TimeMlpConfig, UNetConfig, VelocityNet};
use fm_train::eval::load_run;
use fm_train::train::TrainConfig;
use fm_train::weights::{CONFIG_KEY, export_safetensors, exported_config, import_safetensors};
use safetensors::SafeTensors;

fn mlp_config() -> TrainConfig {
    let mut c = TrainConfig::new("moons", 2);
    c.model = NetConfig::Mlp(TimeMlpConfig::new(2).with_hidden(24).with_depth(2));
    c.predict = "x1".parse().unwrap();
    c
}

fn unet_config() -> TrainConfig {
    let unet = UNetConfig::preset("tiny", 1, 8)
        .unwrap()
        .with_num_classes(Some(3));
    TrainConfig::images("moons", unet)
}

/// The velocity at fixed points and times (without the class embedding).
fn velocity(model: &VelocityNet, dim: usize, dev: &Device) -> Vec<f32> {
    let rows = 3;
    let x: Vec<f32> = (0..rows * dim).map(|i| (i as f32 * 0.37).sin()).collect();
    let x = Tensor::<2>::from_data(TensorData::new(x, [rows, dim]), dev);
    let t = Tensor::<1>::from_data(TensorData::new(vec![0.1f32, 0.5, 0.9], [rows]), dev);
    model
        .forward(x, t, None)
        .into_data()
        .iter::<f32>()
        .collect()
}

fn round_trip(config: TrainConfig) {
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::flex();
    dev.seed(5);
    let model = config.model.init(&dev);
    let file = dir.path().join("m.safetensors");
    export_safetensors(&model, &config, &file).unwrap();
    assert_eq!(exported_config(&file).unwrap().as_ref(), Some(&config));

    let run = dir.path().join("run");
    import_safetensors(&file, &config, &run, &dev, false).unwrap();
    let trained = load_run(&run, &dev, false).unwrap();
    assert_eq!(trained.config, config);
    let dim = config.model.data_dim();
    let (before, after) = (
        velocity(&model, dim, &dev),
        velocity(&trained.model, dim, &dev),
    );
    assert_eq!(before, after, "the imported run computes another velocity");

    // An existing file is not overwritten; a folder holding a run is not replaced unless forced.
    let again = export_safetensors(&model, &config, &file)
        .unwrap_err()
        .to_string();
    assert!(again.contains("already exists"), "{again}");
    let held = import_safetensors(&file, &config, &run, &dev, false).unwrap_err();
    assert!(held.to_string().contains("already holds a run"), "{held}");
    import_safetensors(&file, &config, &run, &dev, true).unwrap();
}

#[test]
fn an_exported_mlp_imports_to_the_same_velocity() {
    round_trip(mlp_config());
}

#[test]
fn an_exported_conditional_unet_imports_to_the_same_velocity() {
    round_trip(unet_config());
}

/// The file as PyTorch sees it, read by the `safetensors` crate: every parameter under its
/// PyTorch name, linear weights transposed to `[out, in]`, values equal to burn's.
#[test]
fn the_file_has_pytorch_names_and_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::flex();
    let config = unet_config();
    let model = config.model.init(&dev);
    let file = dir.path().join("u.safetensors");
    export_safetensors(&model, &config, &file).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let names: Vec<String> = st.names().into_iter().map(String::from).collect();
    assert!(names.iter().all(|n| !n.starts_with("Unet.")), "{names:?}");
    assert!(
        names.iter().any(|n| n.ends_with("norm1.weight")),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with(".gamma") || n.ends_with(".beta"))
    );
    let total: usize = names
        .iter()
        .map(|n| st.tensor(n).unwrap().shape().iter().product::<usize>())
        .sum();
    assert_eq!(total, model.num_params());

    // burn's own layout of the same weights, written by burn-store without adapters: every
    // file tensor is the burn tensor of its name (variant prefixed, norms' gamma/beta), linear
    // weights transposed.
    let mut plain = SafetensorsStore::from_bytes(None);
    model.save_into(&mut plain).unwrap();
    let burn_bytes = plain.get_bytes().unwrap();
    let burn = SafeTensors::deserialize(&burn_bytes).unwrap();
    let mut transposed = 0;
    for name in &names {
        let burn_name = format!("Unet.{name}")
            .replace("norm1.weight", "norm1.gamma")
            .replace("norm1.bias", "norm1.beta")
            .replace("norm2.weight", "norm2.gamma")
            .replace("norm2.bias", "norm2.beta")
            .replace("norm.weight", "norm.gamma")
            .replace("norm.bias", "norm.beta");
        let (ours, theirs) = (st.tensor(name).unwrap(), burn.tensor(&burn_name).unwrap());
        let (a, b) = (floats(ours.data()), floats(theirs.data()));
        // Linear weights are the 2-D tensors other than the class embedding's table.
        if ours.shape().len() != 2 || name.contains("embedding") {
            assert_eq!(ours.shape(), theirs.shape(), "{name}");
            assert_eq!(a, b, "{name}");
        } else {
            let &[rows, cols] = ours.shape() else {
                unreachable!()
            };
            assert_eq!(theirs.shape(), [cols, rows], "{name}");
            let t: Vec<f32> = (0..rows * cols)
                .map(|i| b[(i % cols) * rows + i / cols])
                .collect();
            assert_eq!(a, t, "{name}");
            transposed += 1;
        }
    }
    assert!(
        transposed >= 4,
        "linear weights are [out, in]: {transposed} transposed"
    );
    let meta = st_metadata(&bytes);
    let saved: TrainConfig = serde_json::from_str(&meta[CONFIG_KEY]).unwrap();
    assert_eq!(saved, config);
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn st_metadata(bytes: &[u8]) -> std::collections::HashMap<String, String> {
    let (_, meta) = SafeTensors::read_metadata(bytes).unwrap();
    meta.metadata().clone().unwrap_or_default()
}

/// Weights of another network are refused, naming the file and what does not fit; a missing
/// file and a file that is not safetensors name the file.
#[test]
fn weights_that_do_not_fit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::flex();
    let config = mlp_config();
    let file = dir.path().join("m.safetensors");
    export_safetensors(&config.model.init(&dev), &config, &file).unwrap();
    let mut wider = config.clone();
    wider.model = NetConfig::Mlp(TimeMlpConfig::new(2).with_hidden(32).with_depth(2));
    let run = dir.path().join("run");
    let err = import_safetensors(&file, &wider, &run, &dev, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("m.safetensors") && err.contains("do not fit"),
        "{err}"
    );
    assert!(
        !run.join("config.json").exists(),
        "a refused import wrote a run"
    );
    let mut deeper = config.clone();
    deeper.model = NetConfig::Mlp(TimeMlpConfig::new(2).with_hidden(24).with_depth(3));
    let err = import_safetensors(&file, &deeper, &run, &dev, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("do not fit") && err.contains("layers.2.weight"),
        "{err}"
    );

    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a tensor file").unwrap();
    let err = exported_config(&junk).unwrap_err().to_string();
    assert!(
        err.contains("junk.safetensors") && err.contains("not a safetensors file"),
        "{err}"
    );
    let absent = dir.path().join("absent.safetensors");
    let err = import_safetensors(&absent, &config, &run, &dev, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("absent.safetensors"), "{err}");
}
