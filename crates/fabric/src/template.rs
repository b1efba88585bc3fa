//! `{{ path }}` placeholders in configuration values (`{{ variables.Threshold }}`, resolved when
//! a channel is deployed) and in webhook bodies (`{{ message.Temperature }}`, per message).
//!
//! Written by hand: the syntax is one substitution with no loops, conditionals or escaping, and a
//! template engine crate (handlebars, tera, minijinja) would bring a language users could then
//! expect to work here.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("the template {0:?} opens a placeholder with {{{{ that is never closed with }}}}")]
    Unclosed(String),
    #[error("the placeholder {{{{ {path} }}}} cannot be filled: {reason}")]
    Unresolved { path: String, reason: String },
}

/// Whether `text` contains a placeholder at all (such values are type-checked once filled).
pub fn has_placeholders(text: &str) -> bool {
    text.contains("{{")
}

/// The paths of the placeholders in `text`, in order, trimmed.
pub fn placeholders(text: &str) -> Result<Vec<&str>, TemplateError> {
    let mut paths = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| TemplateError::Unclosed(text.to_string()))?;
        paths.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    Ok(paths)
}

/// Replaces every placeholder with what `lookup` answers for its path; a lookup error names the
/// placeholder that could not be filled.
pub fn render(
    text: &str,
    mut lookup: impl FnMut(&str) -> Result<String, String>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| TemplateError::Unclosed(text.to_string()))?;
        let path = after[..end].trim();
        let value = lookup(path).map_err(|reason| TemplateError::Unresolved {
            path: path.to_string(),
            reason,
        })?;
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_placeholders_and_keeps_the_rest() {
        let filled = render(
            "limit {{ variables.Max }} of {{variables.Unit}}!",
            |path| match path {
                "variables.Max" => Ok("27".into()),
                "variables.Unit" => Ok("C".into()),
                other => Err(format!("unknown {other}")),
            },
        );
        assert_eq!(filled.as_deref(), Ok("limit 27 of C!"));
        assert_eq!(
            render("plain", |_| Err("unused".into())).as_deref(),
            Ok("plain")
        );
    }

    #[test]
    fn reports_what_cannot_be_filled() {
        assert_eq!(
            render(
                "{{ variables.Missing }}",
                |_| Err("no such variable".into())
            ),
            Err(TemplateError::Unresolved {
                path: "variables.Missing".into(),
                reason: "no such variable".into()
            })
        );
        assert!(matches!(
            render("{{ variables.Open", |_| Ok(String::new())),
            Err(TemplateError::Unclosed(_))
        ));
        assert_eq!(placeholders("a {{ x }} b {{y}}"), Ok(vec!["x", "y"]));
    }
}
