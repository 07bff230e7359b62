//! Line charts as inline SVG, and the all-clients chart both kinds of page show.

use std::fmt::Write as _;

use super::format::{escape, trim_number};
use crate::report::types::Report;

/// A chart's line: its label and its points (x = seconds, y). A point whose y is NaN is a
/// gap: the line breaks there and no dot is drawn.
pub(super) type Line = (String, Vec<(f64, f64)>);

/// The narrowest time axis, seconds: a chart with one point, or with every point at one
/// time, spans this much from the whole second before its points.
const MIN_TIME_SPAN_S: f64 = 2.0;

/// Line colours, cycled per client (colour-blind-friendly Okabe–Ito palette).
const COLOURS: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
];

/// The chart's width and height, pixels.
const SIZE: (f64, f64) = (760.0, 260.0);
/// The margins around the plot area (left, right, top, bottom), pixels: the axis labels on
/// the left and below, the legend on the right.
const MARGINS: (f64, f64, f64, f64) = (60.0, 140.0, 30.0, 40.0);

/// Where a chart's points go: the data's ranges and the plot area.
struct Frame {
    /// The plot area's left and top edges, pixels.
    left: f64,
    top: f64,
    /// The plot area's width and height, pixels.
    pw: f64,
    ph: f64,
    /// The time axis, seconds.
    x0: f64,
    x1: f64,
    /// The value axis' top (a round number; the bottom is 0).
    y1: f64,
}

impl Frame {
    /// The frame of `lines`: the time axis spans their points (see [`time_range`]), the
    /// value axis runs from 0 to a round number at least their highest point.
    fn of(lines: &[Line]) -> Frame {
        let (w, h) = SIZE;
        let (left, right, top, bottom) = MARGINS;
        let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
        for &(x, y) in lines.iter().flat_map(|(_, p)| p.iter()) {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
        (x0, x1) = time_range(x0, x1);
        Frame {
            left,
            top,
            pw: w - left - right,
            ph: h - top - bottom,
            x0,
            x1,
            y1: nice_ceiling(y1),
        }
    }

    /// A time's x, pixels.
    fn x(&self, x: f64) -> f64 {
        self.left + (x - self.x0) / (self.x1 - self.x0) * self.pw
    }

    /// A value's y, pixels.
    fn y(&self, y: f64) -> f64 {
        self.top + self.ph - (y / self.y1) * self.ph
    }
}

/// The time axis for points from `x0` to `x1` seconds: their range, or when it is under a
/// second (one point, all points at one time) [`MIN_TIME_SPAN_S`] from the whole second
/// before them, so that the ticks read distinct times (not every tick "10.65 s").
fn time_range(x0: f64, x1: f64) -> (f64, f64) {
    if !(x0.is_finite() && x1.is_finite()) {
        return (0.0, MIN_TIME_SPAN_S);
    }
    if x1 - x0 >= 1.0 {
        return (x0, x1);
    }
    let mid = (x0 + x1) / 2.0;
    let from = (mid - MIN_TIME_SPAN_S / 2.0).floor().max(0.0_f64.min(x0));
    (from, from + MIN_TIME_SPAN_S)
}

/// A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten, at least `max`.
fn nice_ceiling(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * p)
}

/// One line chart as inline SVG: `lines` are (label, points (x = seconds, y)).
pub(super) fn svg_chart(title: &str, unit: &str, lines: &[Line]) -> String {
    svg_chart_of(title, unit, lines, "series")
}

/// [`svg_chart`] with its lines of class `line_class` (`series`: a client's or the fleet's
/// throughput and CPU lines; `latency`: the fleet's latency percentiles; `io`: the host I/O
/// charts).
pub(super) fn svg_chart_of(title: &str, unit: &str, lines: &[Line], line_class: &str) -> String {
    let f = Frame::of(lines);
    let (w, h) = SIZE;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}">"#,
        t = escape(title)
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="18" font-weight="bold">{} ({})</text>"#,
        f.left,
        escape(title),
        escape(unit)
    );
    value_axis(&mut s, &f);
    time_axis(&mut s, &f);
    for (i, line) in lines.iter().enumerate() {
        draw_line(&mut s, &f, i, line, line_class);
    }
    s.push_str("</svg>");
    s
}

/// Five grid lines across the plot, labelled with their values.
fn value_axis(s: &mut String, f: &Frame) {
    let (left, pw) = (f.left, f.pw);
    for i in 0..=4 {
        let y = f.y1 * f64::from(i) / 4.0;
        let py = f.y(y);
        let _ = write!(
            s,
            r##"<line x1="{left}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"##,
            left + pw,
            left - 6.0,
            py + 4.0,
            trim_number(y)
        );
    }
}

/// Five time ticks under the plot, and the plot's border.
fn time_axis(s: &mut String, f: &Frame) {
    let (x0, x1) = (f.x0, f.x1);
    // Enough decimals that the five time ticks differ.
    let decimals = if x1 - x0 >= 20.0 {
        0
    } else if x1 - x0 >= 2.0 {
        1
    } else {
        2
    };
    for i in 0..=4 {
        let x = x0 + (x1 - x0) * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{x:.decimals$} s</text>"#,
            f.x(x),
            f.top + f.ph + 16.0,
        );
    }
    let (left, top, pw, ph) = (f.left, f.top, f.pw, f.ph);
    let _ = write!(
        s,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##
    );
}

/// A line's SVG path: its points joined, broken at each gap (a NaN y).
fn path_of(f: &Frame, points: &[(f64, f64)]) -> String {
    let mut d = String::new();
    let mut pen_down = false;
    for &(x, y) in points {
        if y.is_nan() {
            pen_down = false;
            continue;
        }
        let _ = write!(
            d,
            "{}{:.1},{:.1} ",
            if pen_down { "L" } else { "M" },
            f.x(x),
            f.y(y)
        );
        pen_down = true;
    }
    d.trim_end().to_string()
}

/// The `i`th line (of class `class`): its path (broken at gaps), a dot with a tooltip per
/// measured point, and its legend entry. `data-points` counts the measured points.
fn draw_line(s: &mut String, f: &Frame, i: usize, (label, points): &Line, class: &str) {
    let colour = COLOURS[i % COLOURS.len()];
    let _ = write!(
        s,
        r#"<path class="{class}" data-client="{l}" data-points="{n}" fill="none" stroke="{colour}" stroke-width="2" d="{d}"/>"#,
        l = escape(label),
        n = points.iter().filter(|p| !p.1.is_nan()).count(),
        d = path_of(f, points)
    );
    for &(x, y) in points.iter().filter(|p| !p.1.is_nan()) {
        let _ = write!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{colour}"><title>{} at {:.1} s: {}</title></circle>"#,
            f.x(x),
            f.y(y),
            escape(label),
            x,
            trim_number(y)
        );
    }
    let ly = f.top + 14.0 + 18.0 * i as f64;
    let _ = write!(
        s,
        r#"<rect x="{:.1}" y="{:.1}" width="12" height="4" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"#,
        f.left + f.pw + 12.0,
        ly - 4.0,
        f.left + f.pw + 30.0,
        ly,
        escape(label)
    );
}

/// The all-clients chart: the fleet's measured 1-s throughput (the report's `total.tput`, gaps
/// drawn as gaps) when clients sent `tput`, else the report's `total.series`; none if neither.
pub(super) fn fleet_chart(s: &mut String, report: &Report) {
    let t = &report.total;
    if !t.tput.is_empty() {
        let all: Vec<(f64, f64)> = t
            .tput
            .iter()
            .map(|p| (p.t_s, p.throughput_mb_s.unwrap_or(f64::NAN)))
            .collect();
        s.push_str(&svg_chart(
            "All clients together, measured each second (seconds from the common start)",
            "MB/s",
            &[("all clients".to_string(), all)],
        ));
        s.push('\n');
    } else if !t.series.is_empty() {
        let all: Vec<(f64, f64)> = t
            .series
            .iter()
            .map(|p| (p.t_s, p.throughput_mb_s))
            .collect();
        s.push_str(&svg_chart(
            "All clients together (seconds from the common start)",
            "MB/s",
            &[("all clients".to_string(), all)],
        ));
        s.push('\n');
    }
}

/// The fleet's chunk write latency chart (the report's `total.latency_series`: p50, p99 and
/// p99.9 of every client's writes merged, per interval) and its line over the run, if any
/// client sent `lat` lines.
pub(super) fn latency_chart(s: &mut String, report: &Report) {
    let t = &report.total;
    if let Some(line) = t.latency_line() {
        let _ = writeln!(s, "<p id=\"latency\">{}</p>", escape(&line));
    }
    if t.latency_series.is_empty() {
        return;
    }
    let line = |label: &str, get: fn(&crate::latency::LatencyPoint) -> f64| -> Line {
        let pts = t.latency_series.iter().map(|p| (p.t_s, get(p))).collect();
        (label.to_string(), pts)
    };
    s.push_str(&svg_chart_of(
        "Chunk write latency, all clients merged (seconds since the server started)",
        "ms",
        &[
            line("p50", |p| p.p50_ms),
            line("p99", |p| p.p99_ms),
            line("p99.9", |p| p.p999_ms),
        ],
        "latency",
    ));
    s.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_ceilings_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.3), 10.0);
        assert_eq!(nice_ceiling(130.0), 200.0);
        assert_eq!(nice_ceiling(0.42), 0.5);
    }

    #[test]
    fn gaps_break_the_line_and_lone_moments_get_a_readable_axis() {
        let svg = svg_chart(
            "t",
            "MB/s",
            &[(
                "a".into(),
                vec![
                    (1.0, 1.0),
                    (2.0, 2.0),
                    (3.0, f64::NAN),
                    (4.0, 3.0),
                    (5.0, 4.0),
                ],
            )],
        );
        assert!(svg.contains(r#"data-client="a" data-points="4""#), "{svg}");
        assert_eq!(svg.matches("<circle").count(), 4);
        let d = svg.split(" d=\"").nth(1).unwrap();
        let d = &d[..d.find('"').unwrap()];
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert_eq!(d.matches('L').count(), 2, "{d}");
        assert!(!svg.contains("NaN"));
        // One point, or all at one time: ticks that read distinct times.
        for pts in [vec![(10.65, 3.0)], vec![(10.65, 3.0), (10.651, 4.0)]] {
            let svg = svg_chart("t", "MB/s", &[("a".into(), pts)]);
            let ticks: Vec<&str> = svg
                .split("font-size=\"11\">")
                .skip(1)
                .filter_map(|t| t.split('<').next())
                .filter(|t| t.ends_with(" s"))
                .collect();
            assert_eq!(
                ticks,
                ["9.0 s", "9.5 s", "10.0 s", "10.5 s", "11.0 s"],
                "{svg}"
            );
        }
        assert_eq!(time_range(0.2, 0.2), (0.0, 2.0));
        assert_eq!(time_range(f64::INFINITY, f64::NEG_INFINITY), (0.0, 2.0));
        assert_eq!(time_range(3.0, 12.5), (3.0, 12.5));
    }

    #[test]
    fn a_chart_draws_every_point_of_every_line() {
        let svg = svg_chart(
            "t",
            "MB/s",
            &[
                ("a".into(), vec![(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]),
                ("b<".into(), vec![(0.5, 0.5)]),
            ],
        );
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains(r#"data-client="a" data-points="3""#));
        assert!(svg.contains("b&lt;"));
        assert!(!svg.contains("NaN"));
    }
}
