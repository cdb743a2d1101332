//! Every alert expression of the chart's PrometheusRule and every query of
//! its Grafana dashboard is valid PromQL.

use crate::support::{CHART, helm, read_repo_file, run, stdout, yaml_documents};
use serde_json::Value;

fn parse(what: &str, query: &str) {
    if let Err(e) = promql_parser::parser::parse(query) {
        panic!("{what} is not valid PromQL: {e}\n{query}");
    }
}

#[test]
fn alert_expressions_are_valid_promql() {
    let rendered = stdout(&run(helm().args([
        "template",
        "rel",
        CHART,
        "--set",
        "prometheusRule.enabled=true",
    ])));
    let rule = yaml_documents(&rendered)
        .into_iter()
        .find(|d| d["kind"] == "PrometheusRule")
        .expect("a PrometheusRule");
    let mut alerts = 0;
    for group in rule["spec"]["groups"].as_array().unwrap() {
        for r in group["rules"].as_array().unwrap() {
            let name = r["alert"].as_str().expect("only alerting rules");
            parse(name, r["expr"].as_str().unwrap());
            assert!(r["labels"]["severity"].is_string(), "{name} has no severity");
            assert!(r["annotations"]["summary"].is_string(), "{name} has no summary");
            alerts += 1;
        }
    }
    assert!(
        alerts >= 4,
        "expected at least the four alerts of the issue, found {alerts}"
    );
}

#[test]
fn dashboard_queries_are_valid_promql() {
    let dashboard: Value = serde_json::from_str(&read_repo_file(
        "charts/videocounter-operator/dashboards/videocounter.json",
    ))
    .unwrap();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            // Grafana substitutes its range macro before Prometheus sees the query.
            let query = target["expr"].as_str().unwrap().replace("$__rate_interval", "5m");
            parse(panel["title"].as_str().unwrap(), &query);
            queries += 1;
        }
    }
    assert!(queries >= 20, "only {queries} queries in the dashboard");
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(query) = variable["query"]["query"].as_str() {
            // label_values(<selector>, <label>) is Grafana's; its selector is PromQL.
            let selector = query
                .trim_start_matches("label_values(")
                .rsplit_once(',')
                .unwrap()
                .0;
            parse(variable["name"].as_str().unwrap(), selector);
        }
    }
}
