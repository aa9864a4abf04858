//! The report's chart: mean errors per project in each arm, stacked by class (SVG, drawn with
//! plotters).

use plotters::prelude::*;

use super::Report;

/// Classes, bottom to top, with their colours.
const CLASSES: [(&str, RGBColor); 4] = [
    ("missing imports", RGBColor(214, 39, 40)),
    ("broken cross-references", RGBColor(255, 127, 14)),
    ("other compile errors", RGBColor(148, 103, 189)),
    ("failing tests", RGBColor(31, 119, 180)),
];

/// The chart as an SVG document.
///
/// # Errors
/// A drawing error from plotters (as text).
pub fn chart_svg(r: &Report) -> Result<String, String> {
    let rows = rows(r);
    let title = if r.offline {
        format!(
            "Errors per project by arm (run {}, offline stand-in)",
            r.run
        )
    } else {
        format!("Errors per project by arm (run {}, {})", r.run, r.model)
    };
    let mut svg = String::new();
    draw(&mut svg, &title, &rows).map_err(|e| e.to_string())?;
    Ok(svg)
}

/// Each arm's name and mean errors per project, by class.
fn rows(r: &Report) -> Vec<(String, [f64; 4])> {
    r.arms
        .iter()
        .filter_map(|&a| r.overall(a))
        .filter_map(|s| {
            // An arm with nothing checked has no bar (not an empty one).
            let e = s.errors_per_project?;
            Some((
                s.arm.to_string(),
                [
                    e.missing_import,
                    e.cross_reference,
                    e.other,
                    e.failing_tests,
                ],
            ))
        })
        .collect()
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws the stacked bars of `rows` into `svg`.
fn draw(svg: &mut String, title: &str, rows: &[(String, [f64; 4])]) -> DrawResult {
    let top = rows
        .iter()
        .map(|(_, v)| v.iter().sum::<f64>())
        .fold(1.0_f64, f64::max)
        * 1.15;
    {
        let root = SVGBackend::with_string(svg, (720, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let n = u32::try_from(rows.len()).unwrap_or(u32::MAX);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(16)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d((0..n).into_segmented(), 0.0..top)?;
        let names: Vec<String> = rows.iter().map(|(a, _)| a.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc("mean errors per project")
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names
                    .get(usize::try_from(*i).unwrap_or(usize::MAX))
                    .cloned()
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .draw()?;
        for (class, (label, colour)) in CLASSES.iter().enumerate() {
            let bars = rows.iter().enumerate().map(|(i, (_, v))| {
                let below: f64 = v[..class].iter().sum();
                let x = u32::try_from(i).unwrap_or(u32::MAX);
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(x), below),
                        (SegmentValue::Exact(x + 1), below + v[class]),
                    ],
                    colour.filled(),
                );
                bar.set_margin(0, 0, 18, 18);
                bar
            });
            chart
                .draw_series(bars)?
                .label(*label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        root.present()?;
    }
    Ok(())
}
