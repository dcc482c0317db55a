//! A run folder's config.json and a checkpoint's state.json: any bytes parse (and the config
//! validates) or give an error, never a panic.
#![no_main]
use fm_train::train::{CheckpointState, TrainConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = serde_json::from_slice::<TrainConfig>(data) {
        let _ = config.validate();
    }
    let _ = serde_json::from_slice::<CheckpointState>(data);
});
