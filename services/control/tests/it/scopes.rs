//! Every RPC needs one scope (`foco_control::scopes::RPC_SCOPES`): the table
//! names exactly the RPCs in `proto/`, and over RPCs × keys a key without the
//! RPC's scope is refused with PERMISSION_DENIED while one with it gets past the
//! check (whatever the handler then says of the empty request).

use std::cell::RefCell;
use std::collections::HashMap;

use foco_control::scopes::{RPC_SCOPES, Scope, Scopes, Service, required_scope};
use foco_proto::v1::CreateApiKeyRequest;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use prost::Message as _;
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;

use crate::harness::TestControl;

/// (method, `/package.Service/Method`) of every RPC in the compiled protos.
fn proto_rpcs() -> Vec<(String, String)> {
    let descriptors =
        prost_types::FileDescriptorSet::decode(foco_proto::v1::FILE_DESCRIPTOR_SET).unwrap();
    let mut rpcs = Vec::new();
    for file in &descriptors.file {
        for service in &file.service {
            for method in &service.method {
                rpcs.push((
                    method.name().to_owned(),
                    format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                ));
            }
        }
    }
    rpcs
}

/// Whether the RPC at `path` streams its answer (the call then ends only when
/// the stream does; admission shows in the answer's headers).
fn streams_its_answer(path: &str) -> bool {
    let descriptors =
        prost_types::FileDescriptorSet::decode(foco_proto::v1::FILE_DESCRIPTOR_SET).unwrap();
    descriptors.file.iter().any(|file| {
        file.service.iter().any(|service| {
            service.method.iter().any(|method| {
                method.server_streaming()
                    && path == format!("/{}.{}/{}", file.package(), service.name(), method.name())
            })
        })
    })
}

#[test]
fn the_scope_table_names_every_rpc_once() {
    let mut in_protos: Vec<String> = proto_rpcs().into_iter().map(|(method, _)| method).collect();
    in_protos.sort();
    let mut in_table: Vec<String> = RPC_SCOPES
        .iter()
        .map(|(method, _)| (*method).to_owned())
        .collect();
    in_table.sort();
    assert_eq!(
        in_protos, in_table,
        "every RPC in proto/ needs exactly one entry in services/control/src/scopes.rs"
    );
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Account(u8),
    Service(&'static str),
}

impl Key {
    fn scopes(self) -> Scopes {
        match self {
            Self::Account(bits) => account_scopes(bits),
            Self::Service(name) => Service::parse(name).unwrap().scopes(),
        }
    }
}

/// The account scopes whose bits are set, in [`Scope::ACCOUNT`]'s order.
fn account_scopes(bits: u8) -> Scopes {
    Scope::ACCOUNT
        .into_iter()
        .enumerate()
        .filter(|(index, _)| bits & (1 << index) != 0)
        .map(|(_, scope)| scope)
        .collect()
}

fn keys() -> impl Strategy<Value = Key> {
    // An account key holds at least one scope: none asked means its creator's.
    prop_oneof![
        (1u8..16).prop_map(Key::Account),
        proptest::sample::select(vec!["ingress", "rules", "sender"]).prop_map(Key::Service),
    ]
}

async fn create_key(control: &TestControl, key: Key) -> String {
    let request = match key {
        Key::Account(_) => CreateApiKeyRequest {
            account: "acme".to_owned(),
            scopes: key.scopes().names(),
            ..Default::default()
        },
        Key::Service(service) => CreateApiKeyRequest {
            service: service.to_owned(),
            ..Default::default()
        },
    };
    let created = control
        .admin()
        .create_api_key(request)
        .await
        .expect("create key")
        .into_inner();
    assert_eq!(created.api_key.unwrap().scopes, key.scopes().names());
    created.key
}

/// Calls `path` with an empty request message, whatever its type: the scope is
/// checked before the request is read.
async fn call_empty(control: &TestControl, path: &str, key: &str) -> Result<(), tonic::Status> {
    let channel = foco_control_client::lazy_channel(&control.grpc_url).unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|error| tonic::Status::unavailable(error.to_string()))?;
    let mut request = tonic::Request::new(());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    let streams = streams_its_answer(path);
    let path = PathAndQuery::try_from(path.to_owned()).unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    if streams {
        // Answered once the stream is open (or refused): its end never comes.
        return grpc.server_streaming(request, path, codec).await.map(drop);
    }
    grpc.unary(request, path, codec).await.map(drop)
}

#[test]
fn every_rpc_refuses_a_key_without_its_scope_and_admits_one_with_it() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let control = runtime.block_on(async {
        let control = TestControl::start().await;
        control.create_account("acme").await;
        control
    });
    let rpcs = proto_rpcs();
    let created: RefCell<HashMap<Key, String>> = RefCell::new(HashMap::new());
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(
        &(proptest::sample::select(rpcs.clone()), keys()),
        |((method, path), key)| {
            let required = required_scope(&method).unwrap();
            let secret = created.borrow().get(&key).cloned();
            let secret = match secret {
                Some(secret) => secret,
                None => {
                    let secret = runtime.block_on(create_key(&control, key));
                    created.borrow_mut().insert(key, secret.clone());
                    secret
                }
            };
            let outcome = runtime.block_on(call_empty(&control, &path, &secret));
            let code = outcome
                .as_ref()
                .map_or_else(tonic::Status::code, |()| Code::Ok);
            if key.scopes().contains(required) {
                prop_assert!(
                    code != Code::PermissionDenied && code != Code::Unauthenticated,
                    "{method} with {key:?} (scopes {}) was refused: {outcome:?}",
                    key.scopes()
                );
            } else {
                prop_assert_eq!(
                    code,
                    Code::PermissionDenied,
                    "{} without {} was not refused: {:?}",
                    method,
                    required,
                    outcome
                );
                let message = outcome.unwrap_err().message().to_owned();
                prop_assert!(message.contains(required.name()), "{}", message);
            }
            Ok::<(), TestCaseError>(())
        },
    );
    // The admin key holds every scope.
    for (method, path) in &rpcs {
        let outcome = runtime.block_on(call_empty(&control, path, foco_harness::ADMIN_KEY));
        let code = outcome
            .as_ref()
            .map_or_else(tonic::Status::code, |()| Code::Ok);
        assert!(
            code != Code::PermissionDenied && code != Code::Unauthenticated,
            "{method} refused the admin key: {outcome:?}"
        );
    }
    runtime.block_on(control.stop());
    result.unwrap();
}
