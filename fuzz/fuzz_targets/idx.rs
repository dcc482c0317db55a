//! IDX (MNIST) image and label files: any bytes parse or give an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fm_data::parse_idx(data, 0x0000_0803);
    let _ = fm_data::parse_idx(data, 0x0000_0801);
});
