//! The cumulative-gains chart, drawn with plotters' pure-Rust bitmap
//! backend and the `DejaVu` font embedded by the `dejavu` crate (no system
//! font libraries needed).

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::experiment::Report;

const FONT: &str = "sans-serif";

/// Draws all-features, guarded and random gains curves to a PNG.
pub fn draw(report: &Report, path: &Path) -> Result<(), Box<dyn Error>> {
    register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).map_err(|_| "cannot load the embedded font")?;
    let gains = &report.task1.gains;
    if gains.iter().all(|(_, c)| c.len() < 2) {
        return Err("no labelled evaluation data: nothing to chart".into());
    }
    let root = BitMapBackend::new(path, (900, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = if report.test.is_some() { "held-out test file" } else { "cross-validation, mean of folds" };
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("CoIL 2000 caravan policy: cumulative gains ({title})"), (FONT, 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..100.0, 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_desc("customers contacted, best scored first (%)")
        .y_desc("caravan holders found (%)")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let colours = [RGBColor(200, 60, 40), RGBColor(30, 100, 200), RGBColor(120, 120, 120)];
    for ((name, curve), colour) in gains.iter().zip(colours) {
        let points = curve.iter().map(|g| (100.0 * g.contacted, 100.0 * g.found));
        let at20 = curve.iter().find(|g| (g.contacted - 0.2).abs() < 1e-9).map_or(0.0, |g| 100.0 * g.found);
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(3)))?
            .label(format!("{name}: {at20:.1}% found at 20%"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(3)));
    }
    // The challenge's selection: 800 of 4,000 customers.
    let marker = RGBColor(40, 140, 60);
    chart.draw_series(DashedLineSeries::new([(20.0, 0.0), (20.0, 100.0)], 6, 4, marker.stroke_width(2)))?;
    chart.draw_series([Text::new("top 20%", (21.0, 6.0), (FONT, 15).into_font().color(&marker))])?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    root.present()?;
    Ok(())
}
