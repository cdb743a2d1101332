//! Deletes the topics earlier test runs left on the test ground's broker
//! (names made by `unique_name`), so its data and restart time stay small
//! however many times the suite runs. `make test` runs it first: do not run
//! it while another test run or a benchmark uses the broker.

use rdkafka::admin::AdminOptions;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::time::Duration;
use videocounter_e2e::{is_unique_name, kafka};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let consumer: BaseConsumer = kafka::client_config().create().expect("consumer");
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("listing topics on {}: {e}", kafka::bootstrap()));
    let stale: Vec<String> = metadata
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .filter(|n| is_unique_name(n))
        .collect();
    let admin = kafka::admin();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(60)));
    let mut failed = 0;
    for chunk in stale.chunks(100) {
        let names: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let results = admin
            .delete_topics(&names, &options)
            .await
            .expect("delete_topics request");
        for r in results {
            if let Err((topic, e)) = r {
                eprintln!("deleting topic {topic}: {e}");
                failed += 1;
            }
        }
    }
    println!(
        "test ground: deleted {} topics left by earlier test runs ({} of {} topics kept)",
        stale.len() - failed,
        metadata.topics().len() - stale.len() + failed,
        metadata.topics().len()
    );
}
