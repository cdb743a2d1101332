//! Deletes the topics earlier test runs left on the test ground's broker
//! (names made by `unique_name`), so its data and restart time stay small
//! however many times the suite runs. `make test` runs it first: do not run
//! it while another test run or a benchmark uses the broker.

use videocounter_e2e::{is_unique_name, kafka};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (total, stale, failed) = kafka::delete_topics_where(is_unique_name).await;
    for f in &failed {
        eprintln!("deleting topic {f}");
    }
    println!(
        "test ground: deleted {} topics left by earlier test runs ({} of {total} topics kept)",
        stale - failed.len(),
        total - stale + failed.len(),
    );
}
