//! CSV points: any text gives points or an error naming line and column, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = fm_data::parse_csv(text);
    }
});
