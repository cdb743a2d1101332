//! The broker can be stopped and started again mid-test and keeps its data.
//! Its own test binary: restarting the broker would disturb tests running beside it.

use rdkafka::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::time::Duration;
use videocounter_e2e::kafka::{self, Isolation};
use videocounter_e2e::{run_env_script, unique_name};

#[tokio::test]
async fn records_survive_a_broker_restart() {
    let topic = unique_name("smoke-restart");
    kafka::create_topic(&topic, 2, &[]).await;
    let p: ThreadedProducer<DefaultProducerContext> = kafka::client_config()
        .set("transactional.id", unique_name("smoke-restart-txn"))
        .create()
        .unwrap();
    p.init_transactions(Duration::from_secs(30)).unwrap();
    p.begin_transaction().unwrap();
    for i in 0..100 {
        p.send(BaseRecord::<(), _>::to(&topic).payload(&format!("r{i}")))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    p.commit_transaction(Duration::from_secs(30)).unwrap();
    drop(p);

    run_env_script(&["kafka-stop", "--kill"]);
    run_env_script(&["kafka-start"]);

    let got = kafka::read_to_end(&topic, Isolation::ReadCommitted, Duration::from_secs(60));
    let mut values: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8_lossy(m.payload().unwrap()).into())
        .collect();
    values.sort();
    let mut want: Vec<String> = (0..100).map(|i| format!("r{i}")).collect();
    want.sort();
    assert_eq!(values, want);
}
