//! The Markdown summary of a benchmark report.

use serde_json::Value;
use std::fmt::Write;

/// A number with `digits` decimals, or "-" when absent.
fn num(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map_or_else(|| "-".into(), |x| format!("{x:.digits$}"))
}

/// A string field, or "?".
fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

/// Appends a Markdown table.
fn table(md: &mut String, header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let _ = writeln!(md, "| {} |", header.join(" | "));
    let _ = writeln!(md, "|{}", "---|".repeat(header.len()));
    for cells in rows {
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
}

/// Writes a section's heading and settings, or why it was skipped or failed; returns the
/// section when it holds results.
fn section<'a>(md: &mut String, title: &str, v: &'a Value) -> Option<&'a Value> {
    if v.is_null() {
        return None;
    }
    let _ = writeln!(md, "\n## {title}\n");
    for key in ["skipped", "error"] {
        if let Some(why) = v[key].as_str() {
            let _ = writeln!(md, "{key}: {why}");
            return None;
        }
    }
    if let Some(s) = v["settings"].as_str() {
        let _ = writeln!(md, "{s}\n");
    }
    Some(v)
}

fn rows(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// The report as Markdown tables.
pub fn markdown(r: &Value) -> String {
    let mut md = format!(
        "# Benchmark report ({})\n\nMachine: {} ({} threads). Commit: {}.\n",
        text(&r["mode"]),
        text(&r["machine"]["cpu"]),
        r["machine"]["threads"],
        text(&r["commit"]),
    );
    if let Some(s) = section(&mut md, "Table 1 on 2-D data", &r["table"]) {
        let header = [
            "data",
            "objective",
            "NLL (nats)",
            "entropy gap",
            "energy distance",
            "SW1",
            "NFE",
            "train s",
        ];
        table(
            &mut md,
            &header,
            rows(&s["rows"]).map(|row| {
                vec![
                    text(&row["data"]).into(),
                    text(&row["objective"]).into(),
                    format!(
                        "{} +- {}",
                        num(&row["nll_nats"], 3),
                        num(&row["nll_stderr"], 3)
                    ),
                    num(&row["entropy_gap_nats"], 3),
                    num(&row["energy_distance"], 4),
                    num(&row["sw1"], 4),
                    num(&row["nfe"], 0),
                    num(&row["train_wall_s"], 0),
                ]
            }),
        );
    }
    if let Some(s) = section(&mut md, "Table 1 on MNIST", &r["mnist"]) {
        let header = [
            "objective",
            "bpd",
            "NLL NFE",
            "sampling NFE",
            "FID",
            "train s",
        ];
        table(
            &mut md,
            &header,
            rows(&s["rows"]).map(|row| {
                vec![
                    text(&row["objective"]).into(),
                    format!("{} +- {}", num(&row["bpd"], 3), num(&row["bpd_stderr"], 3)),
                    num(&row["nll_nfe"], 0),
                    num(&row["nfe"], 0),
                    num(&row["fid"], 2),
                    num(&row["train_wall_s"], 0),
                ]
            }),
        );
    }
    if let Some(s) = section(&mut md, "Figure 7: error against NFE", &r["sweep"]) {
        let _ = writeln!(
            md,
            "{} points, reference: {}; chart: `error-vs-nfe.png`.\n",
            s["points"],
            text(&s["reference"])
        );
        let mut lines = Vec::new();
        for run in rows(&s["runs"]) {
            for method in ["euler", "midpoint", "rk4"] {
                let cells: Vec<String> = rows(&run["points"])
                    .filter(|p| p["method"] == method)
                    .map(|p| {
                        let err = p["rms_error"].as_f64().unwrap_or(f64::NAN);
                        format!("{}: {err:.1e}", p["nfe"])
                    })
                    .collect();
                if !cells.is_empty() {
                    lines.push(vec![
                        text(&run["label"]).into(),
                        method.into(),
                        cells.join(", "),
                    ]);
                }
            }
        }
        table(&mut md, &["run", "method", "NFE: RMS error"], lines);
    }
    if let Some(s) = section(&mut md, "Speed", &r["speed"]) {
        let header = [
            "device",
            "train MLP steps/s",
            "train U-Net steps/s",
            "dopri5 samples/s (NFE)",
            "midpoint-20 samples/s",
        ];
        table(
            &mut md,
            &header,
            rows(&s["rows"]).map(|row| {
                vec![
                    text(&row["device"]).into(),
                    num(&row["train_mlp_steps_per_s"], 2),
                    num(&row["train_unet_steps_per_s"], 2),
                    format!(
                        "{} ({})",
                        num(&row["sample_dopri5"]["samples_per_s"], 0),
                        num(&row["sample_dopri5"]["nfe"], 0)
                    ),
                    num(&row["sample_midpoint20"]["samples_per_s"], 0),
                ]
            }),
        );
    }
    if let Some(s) = section(&mut md, "Against PyTorch", &r["pytorch"]) {
        let header = [
            "threads",
            "ours steps/s",
            "PyTorch steps/s",
            "ratio of medians",
        ];
        table(
            &mut md,
            &header,
            rows(&s["training"]).map(|row| {
                vec![
                    row["threads"].to_string(),
                    num(&row["ours_median"], 2),
                    num(&row["pytorch_median"], 2),
                    num(&row["ratio_of_medians"], 2),
                ]
            }),
        );
        md.push('\n');
        let ms = |v: &Value| num(&v.as_f64().map(|s| s * 1e3).into(), 1);
        let header = [
            "sampler",
            "ours ms per NFE",
            "PyTorch ms per NFE",
            "speed-up",
        ];
        table(
            &mut md,
            &header,
            rows(&s["sampling"]).map(|row| {
                vec![
                    text(&row["solver"]).into(),
                    ms(&row["ours_s_per_nfe"]),
                    ms(&row["pytorch_s_per_nfe"]),
                    num(&row["speedup_per_nfe"], 2),
                ]
            }),
        );
    }
    if let Some(s) = section(&mut md, "Images against PyTorch", &r["pytorchimages"]) {
        let header = [
            "preset",
            "threads",
            "batch",
            "ours steps/s",
            "PyTorch steps/s",
            "ratio of medians",
        ];
        table(
            &mut md,
            &header,
            rows(&s["training"]).map(|row| {
                vec![
                    text(&row["preset"]).into(),
                    row["threads"].to_string(),
                    row["batch"].to_string(),
                    num(&row["ours_median"], 3),
                    num(&row["pytorch_median"], 3),
                    num(&row["ratio_of_medians"], 2),
                ]
            }),
        );
        let _ = writeln!(
            md,
            "\nmidpoint sampling, speed-up per evaluation: {}",
            num(&s["sampling"]["speedup_per_nfe"], 2)
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::markdown;
    use serde_json::json;

    #[test]
    fn sections_become_tables_and_skips_say_why() {
        let report = json!({
            "mode": "quick",
            "machine": { "cpu": "test cpu", "threads": 2 },
            "commit": "abc",
            "table": { "settings": "S", "rows": [
                { "data": "checkerboard", "objective": "fm-ot", "nll_nats": 3.9871,
                  "nll_stderr": 0.01, "entropy_gap_nats": 0.31, "energy_distance": 0.002,
                  "sw1": 0.05, "nfe": 50.0, "train_wall_s": 171.2 }
            ]},
            "mnist": { "skipped": "no MNIST at /x: section skipped" },
            "sweep": { "error": "run the table section first" },
            "pytorch": { "settings": "P",
                "training": [{ "threads": 1, "ours_median": 3.66, "pytorch_median": 5.49, "ratio_of_medians": 0.667 }],
                "sampling": [{ "solver": "dopri5", "ours_s_per_nfe": 1.251, "pytorch_s_per_nfe": 0.508, "speedup_per_nfe": 0.406 }] },
            "pytorchimages": { "settings": "I",
                "training": [
                    { "preset": "mnist", "threads": 2, "batch": 32, "ours_median": 2.75, "pytorch_median": 3.8, "ratio_of_medians": 0.7237 },
                    { "preset": "cifar10", "threads": 2, "batch": 32, "ours_median": 0.0223, "pytorch_median": 0.0174, "ratio_of_medians": 1.2816 }],
                "sampling": { "speedup_per_nfe": 0.9012 } },
        });
        let md = markdown(&report);
        assert!(
            md.contains("Machine: test cpu (2 threads). Commit: abc."),
            "{md}"
        );
        assert!(
            md.contains(
                "| checkerboard | fm-ot | 3.987 +- 0.010 | 0.310 | 0.0020 | 0.0500 | 50 | 171 |"
            ),
            "{md}"
        );
        assert!(md.contains("skipped: no MNIST at /x"), "{md}");
        assert!(md.contains("error: run the table section first"), "{md}");
        assert!(md.contains("| 1 | 3.66 | 5.49 | 0.67 |"), "{md}");
        assert!(md.contains("| dopri5 | 1251.0 | 508.0 | 0.41 |"), "{md}");
        assert!(
            md.contains("| mnist | 2 | 32 | 2.750 | 3.800 | 0.72 |"),
            "{md}"
        );
        assert!(
            md.contains("| cifar10 | 2 | 32 | 0.022 | 0.017 | 1.28 |"),
            "{md}"
        );
        assert!(md.contains("speed-up per evaluation: 0.90"), "{md}");
        // A section that did not run is left out.
        assert!(!md.contains("## Speed"), "{md}");
    }
}
