//! gRPC health and reflection, the admin endpoints, and graceful shutdown.

use foco_proto::v1::ListAccountsRequest;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::TestControl;

#[tokio::test]
async fn grpc_health_answers_serving() {
    let control = TestControl::start().await;
    let channel = tonic::transport::Endpoint::from_shared(control.grpc_url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "foco.v1.ControlService"] {
        let response = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            response.status,
            ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
}

#[tokio::test]
async fn admin_endpoints_report_health_readiness_and_metrics() {
    let control = TestControl::start().await;
    control
        .admin()
        .list_accounts(ListAccountsRequest {})
        .await
        .unwrap();
    assert_eq!(control.admin_get("/healthz").await.0, 200);
    assert_eq!(control.admin_get("/readyz").await.0, 200);
    let (status, metrics) = control.admin_get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"foco_control_grpc_requests_total{method="ListAccounts",code="Ok"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn run_returns_after_shutdown() {
    let control = TestControl::start().await;
    // A client that keeps its connection open must not hold shutdown up.
    let mut client = control.admin();
    client.list_accounts(ListAccountsRequest {}).await.unwrap();
    let started = std::time::Instant::now();
    control.stop().await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    drop(client);
}

#[tokio::test]
async fn reflection_lists_the_control_service() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let control = TestControl::start().await;
    let channel = tonic::transport::Endpoint::from_shared(control.grpc_url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses
        .message()
        .await
        .unwrap()
        .expect("one reflection answer");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let names: Vec<_> = list
        .service
        .iter()
        .map(|service| service.name.as_str())
        .collect();
    assert!(names.contains(&"foco.v1.ControlService"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
}
