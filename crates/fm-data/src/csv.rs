//! Points as CSV: one point a row, values separated by commas; an optional header line of
//! names; blank lines and lines starting with `#` are skipped.

use super::{DataError, Points};
use std::path::Path;

/// Reads the points of a CSV file.
pub fn read_csv(path: &Path) -> Result<Points, DataError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| DataError::new(path, format!("cannot read the file: {e}")))?;
    parse_csv(&text).map_err(|message| DataError::new(path, message))
}

/// Parses CSV text; the error says which line and column hold what.
pub fn parse_csv(text: &str) -> Result<Points, String> {
    let mut values = Vec::new();
    let mut dim = None;
    let mut first = true;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let parsed: Vec<Result<f64, _>> = fields.iter().map(|f| f.parse::<f64>()).collect();
        // The first line, if it holds names only, is a header; no later line is.
        if std::mem::take(&mut first) && parsed.iter().all(Result::is_err) {
            continue;
        }
        let line_no = index + 1;
        let want = *dim.get_or_insert(fields.len());
        if fields.len() != want {
            return Err(format!(
                "line {line_no}: {} values, but earlier rows have {want}",
                fields.len()
            ));
        }
        for (col, (field, value)) in fields.iter().zip(parsed).enumerate() {
            match value {
                // Checked after the conversion: 1e300 is finite in f64 but not in f32.
                Ok(v) if (v as f32).is_finite() => values.push(v as f32),
                Ok(_) => {
                    return Err(format!(
                        "line {line_no}, column {}: '{field}' is not a finite 32-bit float (at most about 3.4e38 in size)",
                        col + 1
                    ));
                }
                Err(_) => {
                    let hint = if field.contains(['"', '\'', ';', '\t']) {
                        " (values are plain numbers separated by commas: no quotes, ';' or tabs)"
                    } else {
                        ""
                    };
                    return Err(format!(
                        "line {line_no}, column {}: '{field}' is not a number{hint}",
                        col + 1
                    ));
                }
            }
        }
    }
    match dim {
        Some(dim) => Ok(Points { values, dim }),
        None => Err("no data rows".to_string()),
    }
}

/// Writes points as CSV (no header), each value with enough digits to round-trip an f32.
pub fn write_csv(path: &Path, points: &Points) -> std::io::Result<()> {
    let mut out = String::with_capacity(points.values.len() * 12);
    for row in points.values.chunks(points.dim.max(1)) {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:?}")).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    std::fs::write(path, out)
}
