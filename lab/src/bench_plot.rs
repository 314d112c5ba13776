//! The SVG of `xvrrp bench failover --plot`: for one trial of each
//! implementation (the one with the median gap), the datagrams' arrivals at
//! the server around the event with the gap shaded; beside them, every
//! trial's gap as a strip chart, one column per implementation, with the
//! Master_Down_Interval and the aim drawn across.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::bench_common::f;
use crate::bench_failover::{aim_gap, master_down_interval, Impl, Trial};

/// Milliseconds shown before the event.
const BEFORE_MS: f64 = 30.0;

/// Draws `trials` into an SVG at `path`.
///
/// # Errors
/// No trial, or the file cannot be written.
pub(crate) fn failover(path: &Path, interval: Duration, trials: &[Trial]) -> Result<()> {
    let impls: Vec<Impl> = [Impl::Xvrrp, Impl::Keepalived]
        .into_iter()
        .filter(|i| trials.iter().any(|t| t.imp == *i))
        .collect();
    if impls.is_empty() {
        return Err(anyhow!("no trial to draw"));
    }
    let root = SVGBackend::new(path, (1200, 340 * u32::try_from(impls.len())?)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let (left, right) = root.split_horizontally(800);
    let rows = left.split_evenly((impls.len(), 1));
    let shown: Vec<&Trial> = impls
        .iter()
        .filter_map(|i| median_trial(trials, *i))
        .collect();
    // One time axis for every panel, so the gaps compare by eye.
    let after = shown
        .iter()
        .map(|t| t.gap_to_ms + 40.0)
        .fold(80.0, f64::max)
        .min(2000.0);
    for (area, t) in rows.iter().zip(shown) {
        arrivals(area, t, after)?;
    }
    strip(&right, interval, trials, &impls)?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

/// The trial of `imp` with the median gap.
fn median_trial(trials: &[Trial], imp: Impl) -> Option<&Trial> {
    let mut mine: Vec<&Trial> = trials.iter().filter(|t| t.imp == imp).collect();
    mine.sort_by(|a, b| a.gap_ms.total_cmp(&b.gap_ms));
    mine.get(mine.len() / 2).copied()
}

fn colour(imp: Impl) -> RGBColor {
    match imp {
        Impl::Xvrrp => RGBColor(31, 119, 180),
        Impl::Keepalived => RGBColor(214, 39, 40),
    }
}

/// Arrivals of one trial: x ms from the event, y the datagram's number
/// relative to the one due at the event.
fn arrivals(area: &DrawingArea<SVGBackend<'_>, Shift>, t: &Trial, after: f64) -> Result<()> {
    let at_event = f(t.seq_at_event);
    let points: Vec<(f64, f64)> = t
        .arrivals
        .iter()
        .filter(|(x, _)| (-BEFORE_MS..=after).contains(x))
        .map(|&(x, seq)| (x, f(seq) - at_event))
        .collect();
    let (ymin, ymax) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &(_, y)| {
            (lo.min(y), hi.max(y))
        });
    let (ymin, ymax) = if ymin <= ymax {
        (ymin - 5.0, ymax + 5.0)
    } else {
        (-1.0, 1.0)
    };
    let caption = format!(
        "{}: trial {}, gap {:.1} ms, {} lost",
        t.imp.name(),
        t.index,
        t.gap_ms,
        t.lost
    );
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(-BEFORE_MS..after, ymin..ymax)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("ms from the event (A failed at 0)")
        .y_desc("datagram number − number due at 0")
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(t.gap_from_ms, ymin), (t.gap_to_ms, ymax)],
            RGBColor(255, 165, 0).mix(0.3).filled(),
        )))
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .draw_series(std::iter::once(Text::new(
            format!("gap {:.1} ms", t.gap_ms),
            (t.gap_from_ms + 1.0, ymax - (ymax - ymin) * 0.08),
            ("sans-serif", 14),
        )))
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .draw_series(LineSeries::new(vec![(0.0, ymin), (0.0, ymax)], BLACK))
        .map_err(|e| anyhow!("{e}"))?;
    let c = colour(t.imp);
    chart
        .draw_series(points.iter().map(|&p| Circle::new(p, 1, c.filled())))
        .map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

/// Every trial's gap, one column per implementation, with the
/// Master_Down_Interval and the aim as horizontal lines.
fn strip(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    interval: Duration,
    trials: &[Trial],
    impls: &[Impl],
) -> Result<()> {
    let mdi = master_down_interval(interval).as_secs_f64() * 1000.0;
    let aim = aim_gap(interval).as_secs_f64() * 1000.0;
    let top = trials.iter().map(|t| t.gap_ms).fold(aim, f64::max).max(1.0) * 1.15;
    let columns = f(u64::try_from(impls.len())?);
    let mut chart = ChartBuilder::on(area)
        .caption("gap per trial (ms)", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(32)
        .y_label_area_size(48)
        .build_cartesian_2d(-0.5..columns - 0.5, 0.0..top)
        .map_err(|e| anyhow!("{e}"))?;
    let names: Vec<&str> = impls.iter().map(|i| i.name()).collect();
    chart
        .configure_mesh()
        .x_labels(impls.len())
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() > 0.01 || i < 0.0 {
                return String::new();
            }
            // `i` is a small non-negative whole number here.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let idx = i as usize;
            names.get(idx).map_or_else(String::new, |n| (*n).to_owned())
        })
        .disable_x_mesh()
        .light_line_style(WHITE)
        .y_desc("ms")
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    for (y, label, style) in [
        (mdi, "Master_Down_Interval", BLACK.mix(0.5)),
        (aim, "aim", RGBColor(0, 150, 0).mix(0.8)),
    ] {
        chart
            .draw_series(LineSeries::new(
                vec![(-0.5, y), (columns - 0.5, y)],
                style.stroke_width(1),
            ))
            .map_err(|e| anyhow!("{e}"))?
            .label(format!("{label} {y:.1} ms"))
            .legend(move |(x, ly)| PathElement::new(vec![(x, ly), (x + 16, ly)], style));
    }
    for (col, imp) in impls.iter().enumerate() {
        let x0 = f(u64::try_from(col)?);
        let c = colour(*imp);
        let mine: Vec<&Trial> = trials.iter().filter(|t| t.imp == *imp).collect();
        let n = mine.len().max(1);
        chart
            .draw_series(mine.iter().enumerate().map(|(i, t)| {
                // Spread the points across the column, in trial order.
                let dx = (f(u64::try_from(i).unwrap_or(0)) + 0.5)
                    / f(u64::try_from(n).unwrap_or(1))
                    * 0.5
                    - 0.25;
                Circle::new((x0 + dx, t.gap_ms), 4, c.filled())
            }))
            .map_err(|e| anyhow!("{e}"))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    Ok(())
}
