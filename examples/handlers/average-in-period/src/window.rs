//! The averaging itself, free of host calls so that it is tested on any target.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An open window, as kept in the handler's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// When the window closes (ms since the epoch). `None` while the handler has not been told
    /// the time yet (after a restart, before the first tick): the first tick sets it.
    pub end_ms: Option<u64>,
    pub sum: f64,
    pub count: u64,
    /// The unit of the window's first measurement; the average is reported in it.
    pub unit: String,
}

/// A closed window's result.
#[derive(Debug, PartialEq)]
pub struct Average {
    pub amount: f64,
    pub unit: String,
}

/// Opens, fills and closes windows of a fixed length on the clock the host's ticks give.
/// Messages carry no time of their own, so a measurement belongs to the window open when it is
/// handled.
pub struct Averager {
    duration_ms: u64,
    /// The latest time the host gave; kept in memory only, since every instance is ticked.
    clock_ms: Option<u64>,
}

impl Averager {
    pub fn new(duration_ms: u64) -> Self {
        Averager {
            duration_ms,
            clock_ms: None,
        }
    }

    /// Adds a measurement. A window whose end has passed closes first (its average is returned)
    /// and the measurement opens the next one.
    pub fn add(&self, window: &mut Option<Window>, amount: f64, unit: &str) -> Option<Average> {
        let closed = self.close_if_due(window);
        let open = window.get_or_insert_with(|| Window {
            end_ms: self
                .clock_ms
                .map(|clock| clock.saturating_add(self.duration_ms)),
            sum: 0.0,
            count: 0,
            unit: unit.to_string(),
        });
        open.sum += amount;
        open.count += 1;
        closed
    }

    /// Advances the clock (never backwards) and closes the window when its end has come.
    pub fn tick(&mut self, window: &mut Option<Window>, now_ms: u64) -> Option<Average> {
        let clock = self.clock_ms.map_or(now_ms, |clock| clock.max(now_ms));
        self.clock_ms = Some(clock);
        if let Some(open) = window {
            open.end_ms
                .get_or_insert(clock.saturating_add(self.duration_ms));
        }
        self.close_if_due(window)
    }

    fn close_if_due(&self, window: &mut Option<Window>) -> Option<Average> {
        let clock = self.clock_ms?;
        let end = window.as_ref()?.end_ms?;
        if clock < end {
            return None;
        }
        let closed = window.take()?;
        Some(Average {
            amount: closed.sum / closed.count.max(1) as f64,
            unit: closed.unit,
        })
    }
}

/// The `(Amount, Unit)` of a message body that is a raw measurement of `measurement_type`: one
/// without `AggregationMode` (averages, this handler's own output included, are not measurements).
/// `Amount` may be a JSON number or a numeric string, as older senders write it.
pub fn reading(body: &Value, measurement_type: &str) -> Option<(f64, String)> {
    if body.get("MeasurementType")?.as_str()? != measurement_type
        || body
            .get("AggregationMode")
            .is_some_and(|mode| !mode.is_null())
    {
        return None;
    }
    let amount = match body.get("Amount")? {
        Value::Number(number) => number.as_f64()?,
        Value::String(text) => text.trim().parse().ok()?,
        _ => return None,
    };
    let unit = body
        .get("Unit")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    amount.is_finite().then_some((amount, unit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn averages_close_on_tick() {
        let mut averager = Averager::new(60_000);
        let mut window = None;
        assert_eq!(averager.tick(&mut window, 1_000), None);
        assert_eq!(averager.add(&mut window, 20.0, "C"), None);
        assert_eq!(averager.add(&mut window, 23.0, "C"), None);
        assert_eq!(window.as_ref().unwrap().end_ms, Some(61_000));
        assert_eq!(averager.tick(&mut window, 60_999), None);
        let average = averager.tick(&mut window, 61_000).unwrap();
        assert_eq!(
            average,
            Average {
                amount: 21.5,
                unit: "C".into()
            }
        );
        assert_eq!(window, None);
        // Nothing measured, nothing pushed.
        assert_eq!(averager.tick(&mut window, 200_000), None);
    }

    #[test]
    fn a_measurement_past_the_end_closes_the_window_first() {
        let mut averager = Averager::new(10_000);
        let mut window = Some(Window {
            end_ms: Some(5_000),
            sum: 30.0,
            count: 3,
            unit: "C".into(),
        });
        // The clock moved past the end while the window was restored from state.
        averager.clock_ms = Some(7_000);
        let closed = averager.add(&mut window, 40.0, "C").unwrap();
        assert_eq!(closed.amount, 10.0);
        let open = window.unwrap();
        assert_eq!((open.count, open.end_ms), (1, Some(17_000)));
    }

    #[test]
    fn windows_opened_before_the_first_tick_end_one_duration_after_it() {
        let mut averager = Averager::new(1_000);
        let mut window = None;
        assert_eq!(averager.add(&mut window, 5.0, "C"), None);
        assert_eq!(window.as_ref().unwrap().end_ms, None);
        assert_eq!(averager.tick(&mut window, 50_000), None);
        assert_eq!(window.as_ref().unwrap().end_ms, Some(51_000));
        // A clock going backwards does not reopen time.
        assert_eq!(averager.tick(&mut window, 10), None);
        assert_eq!(averager.tick(&mut window, 51_000).unwrap().amount, 5.0);
    }

    #[test]
    fn readings_are_raw_measurements_of_the_type() {
        let t = "Temperature";
        let reading_of = |body| reading(&body, t);
        assert_eq!(
            reading_of(json!({"MeasurementType": t, "Amount": 21.5, "Unit": "C"})),
            Some((21.5, "C".into()))
        );
        assert_eq!(
            reading_of(json!({"MeasurementType": t, "Amount": "19", "Unit": "C"})),
            Some((19.0, "C".into()))
        );
        assert_eq!(
            reading_of(json!({"MeasurementType": t, "Amount": 1, "AggregationMode": null})),
            Some((1.0, String::new()))
        );
        for skipped in [
            json!({"MeasurementType": "Humidity", "Amount": 40}),
            json!({"MeasurementType": t, "Amount": 21, "AggregationMode": "Average"}),
            json!({"MeasurementType": t, "Amount": "warm"}),
            json!({"MeasurementType": t}),
            json!([1, 2]),
        ] {
            assert_eq!(reading_of(skipped.clone()), None, "{skipped}");
        }
    }
}
