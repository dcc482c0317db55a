//! Line charts with axes and legends (plotters, text through an embedded DejaVu Sans): the
//! error-against-NFE panels of `fm sweep`.

use anyhow::{Context, Result, anyhow};
use image::RgbImage;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// One line of a panel: a label and its `(x, y)` points.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// One log-log panel: a title and its lines.
pub struct Panel {
    pub title: String,
    pub series: Vec<Series>,
}

const PANEL_W: u32 = 420;
const PANEL_H: u32 = 360;
const FONT: &str = "sans-serif";

/// plotters draws text only with a registered font; this one is compiled in, so the picture
/// looks the same on every machine and needs no system font library.
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is a fixed, valid TTF: registering it cannot fail.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

/// The decade range `[10^a, 10^b]` around positive `values`.
fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| *v > 0.0 && v.is_finite())
        .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
    if lo > hi {
        return 1e-3..1.0;
    }
    10f64.powf(lo.log10().floor())..10f64.powf(hi.log10().ceil().max(lo.log10().floor() + 1.0))
}

/// Draws `panels` side by side as log-log charts, `x_label` and `y_label` on every axis, and
/// writes a PNG to `path`.
pub fn log_log_panels(path: &Path, panels: &[Panel], x_label: &str, y_label: &str) -> Result<()> {
    register_font();
    let (w, h) = (PANEL_W * panels.len().max(1) as u32, PANEL_H);
    let mut buffer = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("drawing: {e}"))?;
        let all = |f: fn(&(f64, f64)) -> f64| {
            panels
                .iter()
                .flat_map(|p| p.series.iter().flat_map(|s| s.points.iter().map(f)))
                .collect::<Vec<_>>()
        };
        // One scale for all panels, so they compare at a glance.
        let xs = log_range(all(|p| p.0).into_iter());
        let ys = log_range(all(|p| p.1).into_iter());
        for (area, panel) in root
            .split_evenly((1, panels.len().max(1)))
            .iter()
            .zip(panels)
        {
            draw_panel(area, panel, xs.clone(), ys.clone(), x_label, y_label)
                .map_err(|e| anyhow!("drawing {}: {e}", panel.title))?;
        }
        root.present().map_err(|e| anyhow!("drawing: {e}"))?;
    }
    let img = RgbImage::from_raw(w, h, buffer).context("chart buffer has the wrong size")?;
    crate::plot::save(&img, path)
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

fn draw_panel(
    area: &Area,
    panel: &Panel,
    xs: std::ops::Range<f64>,
    ys: std::ops::Range<f64>,
    x_label: &str,
    y_label: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 18))
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(xs.log_scale(), ys.log_scale())?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style((FONT, 12))
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    for (i, s) in panel.series.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                colour.stroke_width(2),
            ))?
            .label(&s.label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2)));
        chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .label_font((FONT, 12))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
