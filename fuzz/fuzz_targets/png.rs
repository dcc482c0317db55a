//! PNG images of a PNG folder: any bytes decode or give an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fm_data::parse_png(data);
});
