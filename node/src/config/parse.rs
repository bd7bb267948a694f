//! TOML text -> [`Config`], with errors located by line, column and field path.

use std::collections::HashMap;
use std::ops::Range;

use super::{Config, ConfigErrors, ConfigIssue, SUPPORTED_VERSIONS};

/// Parses `input` strictly. The version is checked before the schema so that a
/// file written for another version gets a version message, not a list of
/// unknown fields.
pub(super) fn parse(input: &str, source_name: &str) -> Result<Config, ConfigErrors> {
    let fail = |issue| ConfigErrors::new(source_name, vec![issue]);
    let table: toml::Table = toml::from_str(input).map_err(|e| fail(located(input, &e)))?;
    match table.get("version") {
        None => return Err(fail(ConfigIssue::MissingVersion)),
        Some(toml::Value::Integer(v)) if SUPPORTED_VERSIONS.iter().any(|s| i64::from(*s) == *v) => {
        }
        Some(other) => {
            return Err(fail(ConfigIssue::UnsupportedVersion {
                found: other.to_string(),
            }))
        }
    }
    let mut config: Config = toml::from_str(input).map_err(|e| fail(located(input, &e)))?;
    config.source_name = source_name.to_owned();
    for channel in &mut config.channels {
        if channel.service_name.is_none() {
            channel.service_name = Some(channel.name.clone());
        }
    }
    Ok(config)
}

/// Turns a toml/serde error into an issue with line, column and field path.
fn located(input: &str, err: &toml::de::Error) -> ConfigIssue {
    let span = err.span().unwrap_or(0..0);
    let (line, column) = line_col(input, span.start);
    let mut field = field_path(input, span);
    let message = err.message().trim().to_owned();
    if message.starts_with("unknown field") {
        ConfigIssue::UnknownField {
            line,
            column,
            field,
            message,
        }
    } else if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        if !field.is_empty() {
            field.push('.');
        }
        field.push_str(name);
        ConfigIssue::MissingField {
            line,
            column,
            field,
            message,
        }
    } else {
        ConfigIssue::Parse {
            line,
            column,
            field,
            message,
        }
    }
}

/// 1-based line and column (in chars) of byte `offset`.
fn line_col(input: &str, offset: usize) -> (usize, usize) {
    let before = input.get(..offset.min(input.len())).unwrap_or(input);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Best-effort field path (`channels[1].multicast.group`) of the key or value
/// at `span`: the enclosing table header plus the key on that line, plus the
/// key inside an inline table when the span points there.
fn field_path(input: &str, span: Range<usize>) -> String {
    let start = span.start.min(input.len());
    let line_start = input[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = input[start..].find('\n').map_or(input.len(), |i| start + i);
    let line = &input[line_start..line_end];
    if line.trim_start().starts_with('[') {
        return table_context(&input[..line_end]);
    }
    let mut path = table_context(&input[..line_start]);
    let Some(eq) = line.find('=') else {
        return path;
    };
    push_key(&mut path, &normalize(&line[..eq]));
    let at = input.get(span.clone()).unwrap_or_default().trim();
    let after = input[span.end.min(input.len())..].trim_start();
    if start > line_start + eq && is_bare_key(at) && after.starts_with('=') {
        push_key(&mut path, at);
    }
    path
}

/// The table path in effect at the end of `text`, with array-of-tables
/// indices (`channels[2].pids`).
fn table_context(text: &str) -> String {
    let mut arrays: HashMap<String, usize> = HashMap::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("[[") {
            let name = normalize(rest.split("]]").next().unwrap_or_default());
            *arrays.entry(name.clone()).or_default() += 1;
            current = resolve(&name, &arrays);
        } else if let Some(rest) = t.strip_prefix('[') {
            current = resolve(
                &normalize(rest.split(']').next().unwrap_or_default()),
                &arrays,
            );
        }
    }
    current
}

fn resolve(name: &str, arrays: &HashMap<String, usize>) -> String {
    let mut raw = String::new();
    let mut out = String::new();
    for part in name.split('.') {
        if !raw.is_empty() {
            raw.push('.');
        }
        raw.push_str(part);
        push_key(&mut out, part);
        if let Some(n) = arrays.get(&raw) {
            out.push_str(&format!("[{}]", n.saturating_sub(1)));
        }
    }
    out
}

fn normalize(key: &str) -> String {
    key.split('.')
        .map(|p| p.trim().trim_matches(|c| c == '"' || c == '\''))
        .collect::<Vec<_>>()
        .join(".")
}

fn push_key(path: &mut String, key: &str) {
    if key.is_empty() {
        return;
    }
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

fn is_bare_key(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
