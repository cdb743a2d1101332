//! The gateway as a pod (deploy/gateway.yaml's Deployment, with the local
//! image), beside the example counter: a like posted to it is counted, in
//! the output topic and in the gateway's own view of the counts.

use crate::load::output_counts;
use crate::support::{Deployment, pod_ready};
use std::time::Duration;
use videocounter_e2e::cli::{apply, eventually, get_json, http, read_repo_file};

#[test]
fn a_like_posted_to_the_gateway_pod_is_counted() {
    let mut d = Deployment::install("gateway");
    d.apply_counter(2);
    d.wait_ready(2, Duration::from_secs(180));

    let text = read_repo_file("deploy/gateway.yaml");
    let mut gateway: serde_json::Value = text
        .split("\n---")
        .map(|doc| serde_saphyr::from_str::<serde_json::Value>(doc).expect("deploy/gateway.yaml"))
        .find(|doc| doc["kind"] == "Deployment")
        .expect("deploy/gateway.yaml has the gateway Deployment");
    let container = &mut gateway["spec"]["template"]["spec"]["containers"][0];
    container["image"] = serde_json::Value::from(d.nodes.image("gateway"));
    apply(&d.ns.name, &gateway.to_string());
    let name = gateway["metadata"]["name"].as_str().unwrap().to_string();
    let pod = eventually("the gateway pod Ready", Duration::from_secs(120), || {
        let list = get_json(&[
            "pods",
            "-n",
            &d.ns.name,
            "-l",
            &format!("app.kubernetes.io/name={name}"),
        ])?;
        list["items"].as_array()?.iter().find(|p| pod_ready(p)).cloned()
    });
    let addr = format!("{}:8090", pod["status"]["podIP"].as_str().unwrap())
        .parse()
        .unwrap();

    let video = videocounter_e2e::unique_name("gateway-video");
    let (code, body) =
        http(addr, "POST", &format!("/videos/{video}/likes"), "").expect("the gateway answers");
    assert_eq!(code, 202, "{body}");
    let counted = eventually("the like in every window", Duration::from_secs(60), || {
        let counts = output_counts(&d.windows);
        let mine: Vec<(String, u64)> = counts
            .iter()
            .filter(|((_, v, _), _)| *v == video)
            .map(|((label, _, _), c)| (label.clone(), *c))
            .collect();
        (mine.len() == d.windows.len()).then_some(mine)
    });
    assert!(
        counted.iter().all(|(_, c)| *c == 1),
        "one like, counted once per window: {counted:?}"
    );
    // The gateway reads each output topic on its own: wait for all of them.
    let view = eventually(
        "the gateway's counts of every window",
        Duration::from_secs(30),
        || {
            let (code, body) = http(addr, "GET", &format!("/videos/{video}/counts"), "")?;
            let view: serde_json::Value = (code == 200).then(|| serde_json::from_str(&body).unwrap())?;
            d.windows
                .iter()
                .all(|w| view["counts"][&w.label].is_object())
                .then_some(view)
        },
    );
    for w in &d.windows {
        assert_eq!(view["counts"][&w.label]["count"], 1, "{view}");
    }
}
