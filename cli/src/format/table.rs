//! List output (`service ls`, `service ps`, `node ls`) the way the docker CLI's
//! `formatter.Context` writes it: pick the format (`-q`, `--format`, default table),
//! render each row, and lay tables out with Go's tabwriter.

use anyhow::Result;
use serde_json::Value;

use super::tabwriter::tabwrite;
use super::template::Template;

/// Resolves what to render: `-q` wins, then `--format`, then the default table.
pub fn choose_format<'a>(format: Option<&'a str>, quiet: bool, default_table: &'a str) -> &'a str {
    if quiet {
        return "{{.ID}}";
    }
    match format {
        None | Some("") | Some("table") => default_table,
        Some("json") => "{{json .}}",
        Some(f) => f,
    }
}

/// Renders `rows` (each an object of display strings) with `format`.
/// `header` names a field's column (`DesiredState` -> `DESIRED STATE`).
pub fn render_list(
    format: &str,
    rows: &[Value],
    header: &dyn Fn(&str) -> String,
) -> Result<String> {
    let (is_table, body) = match format.strip_prefix("table") {
        Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
            (true, rest.trim_start())
        }
        _ => (false, format),
    };
    let tpl = Template::parse(body)?;
    let mut text = String::new();
    if is_table {
        text.push_str(&tpl.render_header(header));
        text.push('\n');
    }
    for row in rows {
        text.push_str(&tpl.render(row, true)?);
        text.push('\n');
    }
    Ok(if is_table { tabwrite(&text) } else { text })
}

/// The header names the docker CLI uses for the fields of its list contexts.
/// A labels object as the docker CLI's list columns show it: `k=v,k2=v2`.
pub fn labels_text(v: &Value) -> String {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

pub fn default_header(field: &str) -> String {
    match field {
        "DesiredState" => "DESIRED STATE".into(),
        "CurrentState" => "CURRENT STATE".into(),
        "ManagerStatus" => "MANAGER STATUS".into(),
        "EngineVersion" => "ENGINE VERSION".into(),
        "TLSStatus" => "TLS STATUS".into(),
        other => other.to_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quiet_and_custom_and_table() {
        let rows = vec![
            json!({"ID": "a1", "Name": "web"}),
            json!({"ID": "b2", "Name": "db"}),
        ];
        let f = choose_format(None, true, "table {{.ID}}");
        assert_eq!(render_list(f, &rows, &default_header).unwrap(), "a1\nb2\n");
        let f = choose_format(Some("{{.ID}}: {{.Name}}"), false, "");
        assert_eq!(
            render_list(f, &rows, &default_header).unwrap(),
            "a1: web\nb2: db\n"
        );
        let f = choose_format(Some("table {{.ID}}\\t{{.Name}}"), false, "");
        assert_eq!(
            render_list(f, &rows, &default_header).unwrap(),
            "ID        NAME\na1        web\nb2        db\n"
        );
    }
}
