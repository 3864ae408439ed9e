//! Two small chart kinds as plain SVG: enough for a benchmark report, with no font or image
//! library to install (plotters needs fontconfig and freetype for any text).

use std::fmt::Write;

const WIDTH: f64 = 760.0;
const COLORS: &[&str] = &["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Latency percentile curves: x is the percentile (evenly spaced labels), y is milliseconds on
/// a log scale so that p50 and p99.99 both stay readable.
pub fn percentile_chart(title: &str, x_labels: &[String], series: &[(String, Vec<f64>)]) -> String {
    let (left, right, top, bottom) = (70.0, 200.0, 40.0, 50.0);
    let height = 420.0;
    let (plot_w, plot_h) = (WIDTH - left - right, height - top - bottom);
    let values = series.iter().flat_map(|(_, ys)| ys.iter().copied()).filter(|v| *v > 0.0);
    let (mut lo, mut hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        (lo, hi) = (0.01, 1.0);
    }
    let (log_lo, log_hi) = (lo.log10().floor(), hi.log10().ceil().max(lo.log10().floor() + 1.0));
    let y = |v: f64| top + plot_h * (1.0 - (v.max(lo).log10() - log_lo) / (log_hi - log_lo));
    let x = |i: usize| left + plot_w * i as f64 / (x_labels.len().max(2) - 1) as f64;
    let mut svg = header(height, title);
    for decade in (log_lo as i32)..=(log_hi as i32) {
        let v = 10f64.powi(decade);
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end" font-size="11">{} ms</text>"##,
            left + plot_w,
            left - 6.0,
            y(v) + 4.0,
            trim(v),
            y = y(v)
        );
    }
    for (i, label) in x_labels.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle" font-size="11">{}</text>"#,
            x(i),
            top + plot_h + 18.0,
            escape(label)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="12">percentile</text>"#,
        left + plot_w / 2.0,
        height - 10.0
    );
    for (n, (name, ys)) in series.iter().enumerate() {
        let color = COLORS[n % COLORS.len()];
        let points: Vec<String> = ys.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v))).collect();
        let _ =
            write!(svg, r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#, points.join(" "));
        legend(&mut svg, n, color, name, WIDTH - right + 10.0, top);
    }
    svg.push_str("</svg>\n");
    svg
}

/// Horizontal bars, one per run.
pub fn bar_chart(title: &str, unit: &str, bars: &[(String, f64)]) -> String {
    let (left, top, row) = (260.0, 40.0, 26.0);
    let height = top + row * bars.len() as f64 + 20.0;
    let max = bars.iter().map(|(_, v)| *v).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    let plot_w = WIDTH - left - 120.0;
    let mut svg = header(height, title);
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = top + row * i as f64;
        let w = plot_w * value / max;
        let color = COLORS[i % COLORS.len()];
        let _ = write!(
            svg,
            r#"<text x="{}" y="{:.1}" text-anchor="end" font-size="11">{}</text><rect x="{left}" y="{:.1}" width="{w:.1}" height="{}" fill="{color}"/><text x="{:.1}" y="{:.1}" font-size="11">{} {}</text>"#,
            left - 6.0,
            y + 15.0,
            escape(label),
            y + 4.0,
            row - 8.0,
            left + w + 6.0,
            y + 15.0,
            trim(*value),
            escape(unit)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn header(height: f64, title: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/><text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    )
}

fn legend(svg: &mut String, n: usize, color: &str, name: &str, x: f64, top: f64) {
    let y = top + 18.0 * n as f64;
    let _ = write!(
        svg,
        r#"<rect x="{x}" y="{y}" width="12" height="12" fill="{color}"/><text x="{}" y="{}" font-size="11">{}</text>"#,
        x + 16.0,
        y + 10.0,
        escape(name)
    );
}

fn trim(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_well_formed_svg_with_escaped_labels() {
        let chart = percentile_chart("p <&>", &["p50".into(), "p99".into()], &[("a&b".into(), vec![0.5, 12.0])]);
        assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
        assert!(chart.contains("p &lt;&amp;&gt;") && chart.contains("a&amp;b") && chart.contains("<polyline"));
        let bars = bar_chart("rps", "req/s", &[("x".into(), 10.0), ("y".into(), 5.0)]);
        assert_eq!(bars.matches("<rect x=\"260\"").count(), 2);
    }
}
