//! `foco-control bus-topology` as an operator runs it: the binary, configured by
//! the same environment variables as the services.

use std::process::Command;

use foco_testkit::TestBus;

fn bus_topology(nats_url: &str, prefix: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_foco-control"))
        .arg("bus-topology")
        .env("NATS_URL", nats_url)
        .env("FOCO_BUS_PREFIX", prefix)
        .output()
        .expect("run foco-control")
}

#[tokio::test]
async fn bus_topology_prints_the_streams_and_their_consumers() {
    let bus = TestBus::new();
    let client = async_nats::connect(&bus.nats_url).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let names = foco_bus::BusNames::new(&bus.prefix).unwrap();
    foco_bus::ensure_streams(&jetstream, &names, Default::default())
        .await
        .unwrap();
    let output = tokio::task::spawn_blocking({
        let (url, prefix) = (bus.nats_url.clone(), bus.prefix.clone());
        move || bus_topology(&url, &prefix)
    })
    .await
    .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    for stream in [
        names.events_stream(),
        names.sms_stream(),
        names.receipts_stream(),
    ] {
        assert!(printed.contains(&stream), "{stream} in: {printed}");
    }
    assert!(printed.contains("work queue"), "{printed}");
}

#[tokio::test]
async fn bus_topology_says_why_when_nats_cannot_be_reached() {
    let output = tokio::task::spawn_blocking(|| bus_topology("nats://127.0.0.1:1", ""))
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("could not connect to NATS at nats://127.0.0.1:1"),
        "{error}"
    );
}
