//! The README's configuration reference is generated from the CRD's schema
//! (whose descriptions are the operator's doc comments), so every field is
//! documented and no documented field is stale. The test fails when the
//! README differs; `make docs` rewrites the table.

use crate::support::{read_repo_file, repo_root, yaml_documents};
use serde_json::Value;

const BEGIN: &str = "<!-- BEGIN configuration reference";
const END: &str = "<!-- END configuration reference -->";

/// One table row per field of `spec`, depth first, in schema order.
fn rows(path: &str, schema: &Value, out: &mut Vec<String>) {
    if !path.is_empty() {
        out.push(format!(
            "| `{path}` | {} | {} | {} |",
            type_of(schema),
            default_of(schema),
            cell(schema["description"].as_str().unwrap_or_default())
        ));
    }
    if let Some(props) = schema["properties"].as_object() {
        for (name, sub) in props {
            let child = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            rows(&child, sub, out);
        }
    }
    if schema["type"] == "array" && schema["items"]["properties"].is_object() {
        rows_of_items(&format!("{path}[]"), &schema["items"], out);
    }
}

fn rows_of_items(path: &str, schema: &Value, out: &mut Vec<String>) {
    for (name, sub) in schema["properties"].as_object().unwrap() {
        rows(&format!("{path}.{name}"), sub, out);
    }
}

fn type_of(schema: &Value) -> String {
    if let Some(values) = schema["enum"].as_array() {
        return values
            .iter()
            .map(|v| format!("`{}`", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(" \\| ");
    }
    if schema["x-kubernetes-int-or-string"] == true {
        return "integer or string".into();
    }
    match schema["type"].as_str() {
        Some("array") => format!("list of {}", type_of(&schema["items"])),
        Some("object") if schema["additionalProperties"].is_object() => {
            format!("map of {}", type_of(&schema["additionalProperties"]))
        }
        Some(t) => t.to_string(),
        None => "any".into(),
    }
}

fn default_of(schema: &Value) -> String {
    match &schema["default"] {
        Value::Null => String::new(),
        Value::Object(m) if m.is_empty() => String::new(),
        v => format!("`{}`", serde_json::to_string(v).unwrap().replace('|', "\\|")),
    }
}

/// One line of Markdown table cell text.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn reference_table() -> String {
    let crd = yaml_documents(&read_repo_file("crds/videocounter.yaml"))
        .into_iter()
        .find(|d| d["kind"] == "CustomResourceDefinition")
        .expect("crds/videocounter.yaml holds the CRD");
    let version = &crd["spec"]["versions"][0];
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let mut out = vec![
        format!(
            "`{}/{}` `{}`: `kubectl explain videocounter.spec --recursive` prints the same.",
            crd["spec"]["group"].as_str().unwrap(),
            version["name"].as_str().unwrap(),
            crd["spec"]["names"]["kind"].as_str().unwrap()
        ),
        String::new(),
        "| Field | Type | Default | Description |".into(),
        "|---|---|---|---|".into(),
    ];
    let mut fields = Vec::new();
    rows("", spec, &mut fields);
    let fields: Vec<String> = fields
        .into_iter()
        .map(|r| r.replacen("| `", "| `spec.", 1))
        .collect();
    out.extend(fields);
    out.join("\n")
}

#[test]
fn readme_configuration_reference_matches_the_crd() {
    let readme = read_repo_file("README.md");
    let begin = readme
        .find(BEGIN)
        .expect("README.md has a `<!-- BEGIN configuration reference` marker");
    let body_start = begin + readme[begin..].find("-->").unwrap() + 3;
    let end = readme
        .find(END)
        .expect("README.md has a `<!-- END configuration reference -->` marker");
    let current = readme[body_start..end].trim();
    let wanted = reference_table();
    if current == wanted {
        return;
    }
    if std::env::var_os("VIDEOCOUNTER_UPDATE_DOCS").is_some() {
        let updated = format!("{}\n{wanted}\n{}", &readme[..body_start], &readme[end..]);
        std::fs::write(repo_root().join("README.md"), updated).unwrap();
        return;
    }
    panic!("README.md's configuration reference differs from the CRD: run `make docs`");
}
