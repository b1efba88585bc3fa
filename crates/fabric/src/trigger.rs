//! Triggers: boolean expressions over a message, written in CEL (Common Expression Language).
//!
//! CEL was chosen because it is made for exactly this: side-effect free, no unbounded loops (its
//! only iteration is over the finite lists of the input), and a syntax users already know from
//! `msg.Temperature > 50`. Expressions are compiled once, when a handler is configured, so a typo
//! is reported then and never at run time.

use std::collections::BTreeMap;

use std::sync::{Arc, LazyLock};

use cel::{Context, Env, Program, Value};
use serde::Serialize;
use thiserror::Error;

/// CEL's standard library (functions, types, macros), built once: building it is most of the cost
/// of a `Context::default()`, which would otherwise be paid per message.
static STANDARD_LIBRARY: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// Longest accepted expression; with the message size limit this bounds the cost of evaluation.
pub const MAX_TRIGGER_LENGTH: usize = 4 * 1024;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TriggerError {
    #[error("the trigger is empty; write an expression such as msg.Temperature > 50")]
    Empty,
    #[error("the trigger is {0} characters long; at most {MAX_TRIGGER_LENGTH} are allowed")]
    TooLong(usize),
    #[error("the trigger {expression:?} cannot be parsed: {reason}")]
    Parse { expression: String, reason: String },
    /// The expression is valid but does not apply to this message (missing field, type mismatch);
    /// the message does not match.
    #[error("the trigger {expression:?} could not be evaluated on this message: {reason}")]
    Evaluation { expression: String, reason: String },
}

/// What a trigger can see besides the message.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Scope<'a> {
    pub channel: &'a str,
    pub environment: &'a str,
    pub variables: &'a BTreeMap<String, String>,
}

/// A compiled trigger.
pub struct Trigger {
    expression: String,
    program: Program,
}

impl std::fmt::Debug for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Trigger").field(&self.expression).finish()
    }
}

impl Trigger {
    pub fn compile(expression: &str) -> Result<Self, TriggerError> {
        let trimmed = expression.trim();
        if trimmed.is_empty() {
            return Err(TriggerError::Empty);
        }
        if trimmed.len() > MAX_TRIGGER_LENGTH {
            return Err(TriggerError::TooLong(trimmed.len()));
        }
        let program = Program::compile(trimmed).map_err(|e| TriggerError::Parse {
            expression: trimmed.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Trigger {
            expression: trimmed.to_string(),
            program,
        })
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// Evaluates the trigger with the message bound as both `msg` and `message`. A result that is
    /// not a boolean is an evaluation error, like a missing field.
    pub fn evaluate(
        &self,
        message: &serde_json::Value,
        scope: &Scope<'_>,
    ) -> Result<bool, TriggerError> {
        let failed = |reason: String| TriggerError::Evaluation {
            expression: self.expression.clone(),
            reason,
        };
        // Converted once and bound twice: the conversion is the costly part of an evaluation.
        let bound = cel::to_value(message).map_err(|e| failed(e.to_string()))?;
        let mut context = Context::with_env(STANDARD_LIBRARY.clone());
        context.add_variable_from_value("msg", bound.clone());
        context.add_variable_from_value("message", bound);
        context
            .add_variable("channel", scope.channel)
            .map_err(|e| failed(e.to_string()))?;
        context
            .add_variable("environment", scope.environment)
            .map_err(|e| failed(e.to_string()))?;
        context
            .add_variable("variables", scope.variables)
            .map_err(|e| failed(e.to_string()))?;
        match self.program.execute(&context) {
            Ok(Value::Bool(result)) => Ok(result),
            Ok(other) => Err(failed(format!("it produced {other:?}, not true or false"))),
            Err(error) => Err(failed(error.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(expression: &str, message: serde_json::Value) -> Result<bool, TriggerError> {
        Trigger::compile(expression).unwrap().evaluate(
            &message,
            &Scope {
                channel: "",
                environment: "",
                variables: &BTreeMap::new(),
            },
        )
    }

    #[test]
    fn the_briefs_examples_work_unchanged() {
        assert_eq!(
            check("msg.Temperature > 50", json!({"Temperature": 55.5})),
            Ok(true)
        );
        assert_eq!(
            check("msg.Temperature > 50", json!({"Temperature": 12})),
            Ok(false)
        );
        let alert = r#"message.AggregationMode == "Average" && (message.Amount < 18 || message.Amount > 27)"#;
        assert_eq!(
            check(
                alert,
                json!({"AggregationMode": "Average", "Amount": 30.25})
            ),
            Ok(true)
        );
        assert_eq!(
            check(alert, json!({"AggregationMode": "Average", "Amount": 17})),
            Ok(true)
        );
        assert_eq!(
            check(alert, json!({"AggregationMode": "Average", "Amount": 21.5})),
            Ok(false)
        );
        // Raw measurements lack AggregationMode: not a match (the fabric counts this as false).
        assert!(matches!(
            check(alert, json!({"Amount": 30})),
            Err(TriggerError::Evaluation { .. })
        ));
    }

    #[test]
    fn scope_values_are_visible() {
        let trigger =
            Trigger::compile(r#"channel == "sensors" && variables.Limit == "5""#).unwrap();
        let variables = BTreeMap::from([("Limit".to_string(), "5".to_string())]);
        let scope = Scope {
            channel: "sensors",
            environment: "local",
            variables: &variables,
        };
        assert_eq!(trigger.evaluate(&json!({}), &scope), Ok(true));
    }

    #[test]
    fn invalid_expressions_are_rejected_at_compile_time() {
        assert_eq!(Trigger::compile("  ").unwrap_err(), TriggerError::Empty);
        assert!(matches!(
            Trigger::compile("msg.Temperature >"),
            Err(TriggerError::Parse { .. })
        ));
        assert!(matches!(
            Trigger::compile(&"a".repeat(MAX_TRIGGER_LENGTH + 1)),
            Err(TriggerError::TooLong(_))
        ));
    }

    #[test]
    fn inapplicable_messages_are_evaluation_errors() {
        let missing = check("msg.Temperature > 50", json!({"Humidity": 3}));
        assert!(
            matches!(missing, Err(TriggerError::Evaluation { .. })),
            "{missing:?}"
        );
        let mismatch = check("msg.Temperature > 50", json!({"Temperature": "hot"}));
        assert!(
            matches!(mismatch, Err(TriggerError::Evaluation { .. })),
            "{mismatch:?}"
        );
        let not_boolean = check("msg.Temperature", json!({"Temperature": 3}));
        assert!(
            matches!(not_boolean, Err(TriggerError::Evaluation { .. })),
            "{not_boolean:?}"
        );
    }
}
