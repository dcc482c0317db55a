//! The Markdown summary of a benchmark report.

use serde_json::Value;
use std::fmt::Write;

/// A number with `digits` decimals, or "-" when absent.
fn num(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map_or_else(|| "-".into(), |x| format!("{x:.digits$}"))
}

fn median(v: &Value) -> Value {
    let mut xs: Vec<f64> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => Value::Null,
        n if n % 2 == 1 => xs[n / 2].into(),
        n => ((xs[n / 2 - 1] + xs[n / 2]) / 2.0).into(),
    }
}

/// Writes a section's heading and settings, or why it was skipped or failed; returns its rows
/// when it has any.
fn section<'a>(md: &mut String, title: &str, v: &'a Value) -> Option<&'a Vec<Value>> {
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
    v["rows"].as_array()
}

/// The report as Markdown tables.
pub fn markdown(r: &Value) -> String {
    let mut md = format!(
        "# Benchmark report ({})\n\nMachine: {} ({} threads). Commit: {}.\n",
        r["mode"].as_str().unwrap_or("?"),
        r["machine"]["cpu"].as_str().unwrap_or("?"),
        r["machine"]["threads"],
        r["commit"].as_str().unwrap_or("?"),
    );
    if let Some(rows) = section(&mut md, "Table 1 on 2-D data", &r["table"]) {
        md += "| data | objective | NLL (nats) | entropy gap | energy distance | SW1 | NFE | train s |\n|---|---|---|---|---|---|---|---|\n";
        for row in rows {
            let _ = writeln!(
                md,
                "| {} | {} | {} +- {} | {} | {} | {} | {} | {} |",
                row["data"].as_str().unwrap_or("?"),
                row["objective"].as_str().unwrap_or("?"),
                num(&row["nll_nats"], 3),
                num(&row["nll_stderr"], 3),
                num(&row["entropy_gap_nats"], 3),
                num(&row["energy_distance"], 4),
                num(&row["sw1"], 4),
                num(&row["nfe"], 0),
                num(&row["train_wall_s"], 0),
            );
        }
    }
    if let Some(rows) = section(&mut md, "Table 1 on MNIST", &r["mnist"]) {
        md += "| objective | bpd | NLL NFE | sampling NFE | train s |\n|---|---|---|---|---|\n";
        for row in rows {
            let _ = writeln!(
                md,
                "| {} | {} +- {} | {} | {} | {} |",
                row["objective"].as_str().unwrap_or("?"),
                num(&row["bpd"], 3),
                num(&row["bpd_stderr"], 3),
                num(&row["nll_nfe"], 0),
                num(&row["nfe"], 0),
                num(&row["train_wall_s"], 0),
            );
        }
    }
    let sweep = &r["sweep"];
    if !sweep.is_null() {
        let _ = writeln!(md, "\n## Figure 7: error against NFE\n");
        if let Some(e) = sweep["error"].as_str() {
            let _ = writeln!(md, "error: {e}");
        } else {
            let _ = writeln!(
                md,
                "{} points, reference: {}; chart: `error-vs-nfe.png`.\n\n| run | method | NFE: RMS error |\n|---|---|---|",
                sweep["points"],
                sweep["reference"].as_str().unwrap_or("?")
            );
            for run in sweep["runs"].as_array().into_iter().flatten() {
                for method in ["euler", "midpoint", "rk4"] {
                    let cells: Vec<String> = run["points"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|p| p["method"] == method)
                        .map(|p| {
                            format!(
                                "{}: {:.1e}",
                                p["nfe"],
                                p["rms_error"].as_f64().unwrap_or(f64::NAN)
                            )
                        })
                        .collect();
                    if !cells.is_empty() {
                        let _ = writeln!(
                            md,
                            "| {} | {method} | {} |",
                            run["label"].as_str().unwrap_or("?"),
                            cells.join(", ")
                        );
                    }
                }
            }
        }
    }
    if let Some(rows) = section(&mut md, "Speed", &r["speed"]) {
        md += "| device | train MLP steps/s | train U-Net steps/s | dopri5 samples/s (NFE) | midpoint-20 samples/s |\n|---|---|---|---|---|\n";
        for row in rows {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} ({}) | {} |",
                row["device"].as_str().unwrap_or("?"),
                num(&row["train_mlp_steps_per_s"], 2),
                num(&row["train_unet_steps_per_s"], 2),
                num(&row["sample_dopri5"]["samples_per_s"], 0),
                num(&row["sample_dopri5"]["nfe"], 0),
                num(&row["sample_midpoint20"]["samples_per_s"], 0),
            );
        }
    }
    let race = &r["pytorch"];
    if section(&mut md, "Against PyTorch", race).is_none()
        && let Some(training) = race["training"].as_array()
    {
        md += "| threads | ours steps/s (median) | PyTorch steps/s (median) | ratio |\n|---|---|---|---|\n";
        for row in training {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                row["threads"],
                num(&median(&row["ours_steps_per_s"]), 2),
                num(&median(&row["pytorch_steps_per_s"]), 2),
                num(&row["ratio_of_medians"], 2),
            );
        }
        md +=
            "\n| sampler | ours ms per NFE | PyTorch ms per NFE | speed-up |\n|---|---|---|---|\n";
        for row in race["sampling"].as_array().into_iter().flatten() {
            let ms = |v: &Value| num(&v.as_f64().map(|s| s * 1e3).into(), 1);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                row["solver"].as_str().unwrap_or("?"),
                ms(&row["ours_s_per_nfe"]),
                ms(&row["pytorch_s_per_nfe"]),
                num(&row["speedup_per_nfe"], 2),
            );
        }
    }
    md
}
