//! The two plots the tutorial draws with matplotlib, as PNG files:
//! accuracy per epoch (train dashed red, test solid blue, **with** a legend
//! — the tutorial's `plt.xlabel(loc=5)` was meant as `plt.legend(loc=5)`,
//! so its plot had none) and the training loss per iteration.
//!
//! Text uses DejaVu Sans embedded in the binary (`assets/DejaVuSans.ttf`,
//! licence in `assets/DejaVuSans.LICENSE`) through plotters' `ab_glyph`
//! backend, so plotting needs no system fonts or fontconfig.

use super::metrics::History;
use crate::error::{Error, Result};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::path::Path;
use std::sync::OnceLock;

/// Width and height of both plots, in pixels.
pub const PLOT_SIZE: (u32, u32) = (800, 600);

/// The embedded font's bytes.
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Registers the embedded font as `"sans-serif"` (once per process).
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| register_font("sans-serif", FontStyle::Normal, DEJAVU_SANS).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::Output {
            path: "assets/DejaVuSans.ttf".into(),
            detail: "the embedded font could not be parsed".into(),
        })
    }
}

/// Turns any drawing error into [`Error::Output`] naming `path`.
fn fail(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Output {
        path: path.to_path_buf(),
        detail: format!("plotting failed: {e}"),
    }
}

/// Draws train (dashed red) and test (solid blue) accuracy per epoch, with a
/// legend, into the PNG file `path`.
///
/// **Errors** with [`Error::Output`] if there are no epochs or the file
/// cannot be drawn or written.
pub fn plot_accuracy(history: &History, path: &Path) -> Result<()> {
    ensure_font()?;
    if history.epochs.is_empty() {
        return Err(fail(path, "no epochs to plot"));
    }
    let n = history.epochs.len() as f64;
    let train: Vec<(f64, f64)> = history
        .epochs
        .iter()
        .map(|e| (e.epoch as f64, e.train_accuracy))
        .collect();
    let test: Vec<(f64, f64)> = history
        .epochs
        .iter()
        .map(|e| (e.epoch as f64, e.test_accuracy))
        .collect();
    let lowest = train.iter().chain(&test).map(|p| p.1).fold(1.0, f64::min);
    // Start the axis at a round tenth below the lowest value.
    let y0 = ((lowest * 10.0).floor() / 10.0).clamp(0.0, 0.9);
    let root = BitMapBackend::new(path, PLOT_SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Accuracy per epoch", ("sans-serif", 28))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0.5..n + 0.5, y0..1.0)
        .map_err(|e| fail(path, e))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("accuracy")
        .x_labels(history.epochs.len().min(20) + 1)
        .x_label_formatter(&|x| {
            if x.fract() == 0.0 && *x >= 1.0 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.2}"))
        .light_line_style(RGBColor(238, 238, 238))
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 20))
        .draw()
        .map_err(|e| fail(path, e))?;
    let red = RED.stroke_width(2);
    let blue = BLUE.stroke_width(2);
    chart
        .draw_series(DashedLineSeries::new(train.clone(), 10, 6, red))
        .map_err(|e| fail(path, e))?
        .label("train")
        .legend(move |(x, y)| DashedPathElement::new(vec![(x, y), (x + 30, y)], 8, 4, red));
    chart
        .draw_series(train.iter().map(|&p| Circle::new(p, 3, RED.filled())))
        .map_err(|e| fail(path, e))?;
    chart
        .draw_series(LineSeries::new(test.clone(), blue))
        .map_err(|e| fail(path, e))?
        .label("test")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 30, y)], blue));
    chart
        .draw_series(test.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))
        .map_err(|e| fail(path, e))?;
    chart
        .configure_series_labels()
        .position(legend_position(&train, &test, y0))
        .label_font(("sans-serif", 18))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(path, e))?;
    root.present().map_err(|e| fail(path, e))?;
    Ok(())
}

/// Where the legend goes: the tutorial meant matplotlib's `loc=5`, the
/// middle of the right edge; it moves to the bottom or top right corner when
/// the curves' right half would run through the middle.
fn legend_position(train: &[(f64, f64)], test: &[(f64, f64)], y0: f64) -> SeriesLabelPosition {
    let span = 1.0 - y0;
    let right: Vec<f64> = train
        .iter()
        .chain(test)
        .filter(|p| p.0 > train.len() as f64 / 2.0)
        .map(|p| p.1)
        .collect();
    let lo = right.iter().copied().fold(1.0, f64::min);
    let hi = right.iter().copied().fold(y0, f64::max);
    let (mid_lo, mid_hi) = (y0 + 0.35 * span, y0 + 0.65 * span);
    if hi < mid_lo || lo > mid_hi {
        SeriesLabelPosition::MiddleRight
    } else if lo > y0 + 0.25 * span {
        SeriesLabelPosition::LowerRight
    } else {
        SeriesLabelPosition::UpperRight
    }
}

/// Draws the mini-batch loss of every iteration into the PNG file `path`.
///
/// **Errors** with [`Error::Output`] if there are no iterations or the file
/// cannot be drawn or written.
pub fn plot_loss(history: &History, path: &Path) -> Result<()> {
    ensure_font()?;
    let losses = &history.iteration_losses;
    if losses.is_empty() {
        return Err(fail(path, "no iterations to plot"));
    }
    let top = losses.iter().copied().fold(0.0, f64::max).max(1e-3) * 1.05;
    let root = BitMapBackend::new(path, PLOT_SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Training loss per iteration", ("sans-serif", 28))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..(losses.len() as f64).max(2.0), 0.0..top)
        .map_err(|e| fail(path, e))?;
    chart
        .configure_mesh()
        .x_desc("iteration")
        .y_desc("loss (softmax cross-entropy)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.2}"))
        .light_line_style(RGBColor(238, 238, 238))
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 20))
        .draw()
        .map_err(|e| fail(path, e))?;
    chart
        .draw_series(LineSeries::new(
            losses.iter().enumerate().map(|(i, &l)| ((i + 1) as f64, l)),
            BLUE.stroke_width(1),
        ))
        .map_err(|e| fail(path, e))?;
    root.present().map_err(|e| fail(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(v: &[f64]) -> Vec<(f64, f64)> {
        v.iter()
            .enumerate()
            .map(|(i, &a)| ((i + 1) as f64, a))
            .collect()
    }

    #[test]
    fn the_legend_avoids_the_curves_right_half() {
        // Both curves high on the right: the middle of the right edge is free.
        let (tr, te) = (
            curve(&[0.88, 0.95, 0.99, 0.99]),
            curve(&[0.87, 0.93, 0.94, 0.94]),
        );
        assert_eq!(
            legend_position(&tr, &te, 0.8),
            SeriesLabelPosition::MiddleRight
        );
        // Curves through the middle, nothing low: bottom right.
        let (tr, te) = (
            curve(&[0.83, 0.87, 0.89, 0.90]),
            curve(&[0.82, 0.85, 0.87, 0.88]),
        );
        assert_eq!(
            legend_position(&tr, &te, 0.8),
            SeriesLabelPosition::LowerRight
        );
        // Something low on the right as well: top right.
        let (tr, te) = (curve(&[0.1, 0.3, 0.5, 0.7]), curve(&[0.1, 0.2, 0.1, 0.5]));
        assert_eq!(
            legend_position(&tr, &te, 0.0),
            SeriesLabelPosition::UpperRight
        );
    }
}
