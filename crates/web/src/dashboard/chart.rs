//! Bar charts drawn on the server as SVG: no chart library to ship, and the
//! numbers are in the page for screen readers and tests.

use chrono::NaiveDate;

/// Height of the plot area, in SVG units.
pub(crate) const HEIGHT: i64 = 120;
/// Width of one day's slot, in SVG units.
pub(crate) const SLOT: i64 = 10;

/// One bar, positioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bar {
    /// Left edge.
    pub(crate) x: i64,
    /// Top edge.
    pub(crate) y: i64,
    /// Height (at least 1, so days without mail still show a baseline).
    pub(crate) height: i64,
    /// The value.
    pub(crate) value: i64,
    /// The day, as shown in its tooltip.
    pub(crate) label: String,
}

/// Bars for `(day, value)` pairs, scaled so the largest fills the height.
pub(crate) fn bars(points: &[(NaiveDate, i64)]) -> Vec<Bar> {
    let max = points.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    points
        .iter()
        .zip(0i64..)
        .map(|((day, value), i)| {
            let height = (value * HEIGHT / max).max(1);
            Bar {
                x: i * SLOT + 1,
                y: HEIGHT - height,
                height,
                value: *value,
                label: day.format("%-d %b").to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_value_fills_the_height_and_zero_keeps_a_baseline() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        let bars = bars(&[(day(1), 0), (day(2), 50), (day(3), 100)]);
        assert_eq!(bars[0].height, 1);
        assert_eq!(bars[1].height, HEIGHT / 2);
        assert_eq!(bars[2].height, HEIGHT);
        assert_eq!(bars[2].y, 0);
        assert_eq!(bars[1].x, SLOT + 1);
        assert_eq!(bars[2].label, "3 Nov");
    }
}
