//! average-in-period: averages the `Amount` of the JSON messages with the configured
//! `MeasurementType` (and no `AggregationMode`, so averages are never averaged again) over a window
//! of `DurationInSeconds`, then pushes `{Amount, Unit, MeasurementType, AggregationMode: "Average"}`.
//!
//! The open window lives in the host's state, so a restart neither loses nor repeats it.

mod window;

use messagehandler_sdk::{export_handler, log, push_json, state, Config, Handler, Message};
use serde_json::{json, Value};

use window::{reading, Average, Averager, Window};

/// State key of the open window.
const WINDOW: &str = "window";

struct AverageInPeriod {
    measurement_type: String,
    subject: String,
    averager: Averager,
}

impl AverageInPeriod {
    fn emit(&self, average: Average) -> Result<(), String> {
        push_json(
            &self.subject,
            &json!({
                "Amount": average.amount,
                "Unit": average.unit,
                "MeasurementType": self.measurement_type,
                "AggregationMode": "Average",
            }),
        )
    }
}

fn load() -> Result<Option<Window>, String> {
    state::get_json(WINDOW)
}

fn save(window: &Option<Window>) -> Result<(), String> {
    match window {
        Some(window) => state::set_json(WINDOW, window),
        None => {
            state::delete(WINDOW);
            Ok(())
        }
    }
}

impl Handler for AverageInPeriod {
    fn init(config: Config) -> Result<Self, String> {
        let seconds: f64 = config.parse("DurationInSeconds")?;
        if !(seconds.is_finite() && seconds > 0.0) {
            return Err(format!(
                "DurationInSeconds must be a positive number, not {seconds}"
            ));
        }
        Ok(AverageInPeriod {
            measurement_type: config.require("MeasurementType")?.to_string(),
            subject: config.get("OutputSubject").unwrap_or("Average").to_string(),
            averager: Averager::new((seconds * 1000.0).round() as u64),
        })
    }

    fn handle(&mut self, batch: Vec<Message>) -> Result<(), String> {
        let mut window = load()?;
        let before = window.clone();
        for message in batch {
            // The channel carries all kinds of messages; only JSON measurements concern us.
            if !message.is_json() {
                continue;
            }
            let Ok(body) = message.json::<Value>() else {
                log::debug(&format!(
                    "message {} is not valid JSON; skipped",
                    message.id
                ));
                continue;
            };
            if let Some((amount, unit)) = reading(&body, &self.measurement_type) {
                if let Some(average) = self.averager.add(&mut window, amount, &unit) {
                    self.emit(average)?;
                }
            }
        }
        if window != before {
            save(&window)?;
        }
        Ok(())
    }

    fn tick(&mut self, now_ms: u64) -> Result<(), String> {
        let mut window = load()?;
        let before = window.clone();
        if let Some(average) = self.averager.tick(&mut window, now_ms) {
            self.emit(average)?;
        }
        if window != before {
            save(&window)?;
        }
        Ok(())
    }
}

export_handler!(AverageInPeriod);
