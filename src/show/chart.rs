//! Charts as SVG values (plotters' SVG backend, no system fonts): precision-recall curves with the chosen
//! point marked (step 12) and bar charts (the predicted label distribution, steps 15-19).
//!
//! Each function returns a [`Svg`] that renders inline in a notebook and can be saved as a `.svg` file.

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::Svg;

/// Series colors, one per label (colour-blind friendly Okabe-Ito palette).
const COLORS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("chart drawing failed: {e:?}")
}

/// One precision-recall curve to draw.
#[derive(Debug, Clone)]
pub struct PrSeries<'a> {
    /// Legend name (the label).
    pub name: &'a str,
    /// Recall of each curve point (x).
    pub recall: &'a [f64],
    /// Precision of each curve point (y).
    pub precision: &'a [f64],
    /// The chosen operating point (recall, precision): drawn as a filled circle.
    pub chosen: Option<(f64, f64)>,
    /// A candidate that was rejected (by the small-support guard): drawn as a cross.
    pub rejected: Option<(f64, f64)>,
}

/// All curves in one chart (recall on x, precision on y), chosen points as filled circles, points the
/// guard rejected as crosses, a legend naming each label.
pub fn pr_curves(title: &str, series: &[PrSeries<'_>]) -> Result<Svg> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (640, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..1.0f64, 0f64..1.05f64)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("recall")
            .y_desc("precision")
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(plot_err)?;
        for (i, s) in series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let pts: Vec<(f64, f64)> = s.recall.iter().copied().zip(s.precision.iter().copied()).collect();
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(plot_err)?
                .label(s.name.to_string())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            if let Some(p) = s.chosen {
                chart.draw_series(std::iter::once(Circle::new(p, 6, color.filled()))).map_err(plot_err)?;
            }
            if let Some(p) = s.rejected {
                chart.draw_series(std::iter::once(Cross::new(p, 6, color.stroke_width(2)))).map_err(plot_err)?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(Svg(out))
}

/// Vertical bar chart of `(category, value)` with the value written above each bar (`value_fmt`).
pub fn bars(title: &str, y_desc: &str, data: &[(String, f64)], value_fmt: &dyn Fn(f64) -> String) -> Result<Svg> {
    let n = data.len().max(1);
    let ymax = data.iter().map(|d| d.1).fold(0.0f64, f64::max);
    let ymax = if ymax > 0.0 { ymax * 1.15 } else { 1.0 };
    let names: Vec<String> = data.iter().map(|d| d.0.clone()).collect();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (640, 380)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..ymax)
            .map_err(plot_err)?;
        let fmt_x = |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                names[i as usize].clone()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&fmt_x)
            .y_desc(y_desc)
            .draw()
            .map_err(plot_err)?;
        for (i, (_, v)) in data.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let x = i as f64;
            chart
                .draw_series(std::iter::once(Rectangle::new([(x - 0.35, 0.0), (x + 0.35, *v)], color.filled())))
                .map_err(plot_err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    value_fmt(*v),
                    (x - 0.3, *v + ymax * 0.02),
                    ("sans-serif", 13).into_font(),
                )))
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(Svg(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// plotters writes each text element as `<text ...>\nTEXT\n</text>`.
    fn has_text(svg: &Svg, t: &str) -> bool {
        svg.0.contains(&format!(">\n{t}\n</text>"))
    }

    #[test]
    fn pr_chart_has_a_path_per_series_and_marks() {
        let r = [1.0, 0.5, 0.0];
        let p = [0.5, 1.0, 1.0];
        let svg = pr_curves(
            "PR",
            &[
                PrSeries { name: "ads", recall: &r, precision: &p, chosen: Some((0.5, 1.0)), rejected: None },
                PrSeries { name: "spam", recall: &r, precision: &p, chosen: None, rejected: Some((1.0, 0.5)) },
            ],
        )
        .unwrap();
        assert!(svg.0.starts_with("<svg"));
        assert!(has_text(&svg, "ads") && has_text(&svg, "spam") && has_text(&svg, "recall"));
        assert!(svg.0.contains("<circle"));
    }

    #[test]
    fn bar_chart_names_categories_and_values() {
        let svg = bars("dist", "reviews", &[("ads".into(), 3.0), ("spam".into(), 1.0)], &|v| format!("{v:.0}"))
            .unwrap();
        assert!(has_text(&svg, "ads") && has_text(&svg, "spam") && has_text(&svg, "3"));
        assert!(svg.0.matches("<rect").count() >= 3, "background + 2 bars");
    }
}
