//! NumPy .npy arrays: any bytes give points or an error naming the field, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fm_data::parse_npy(data);
});
