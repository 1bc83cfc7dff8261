//! A control App on port-0 listeners over a fresh database and bus prefix, and
//! clients for it.

use std::ops::Deref;

use foco_proto::v1::{
    Account, CreateApiKeyRequest, HmacSha256, SignatureEncoding, Source,
    UpsertProviderRouteRequest, UpsertRuleRequest, UpsertSourceRequest, Verification, verification,
};

/// `foco_harness::TestControl` with the helpers these tests share.
pub struct TestControl {
    inner: foco_harness::TestControl,
}

impl Deref for TestControl {
    type Target = foco_harness::TestControl;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl TestControl {
    pub async fn start() -> Self {
        Self {
            inner: foco_harness::TestControl::start().await,
        }
    }

    pub async fn start_with_tls(tls: foco_control::TlsFiles) -> Self {
        Self {
            inner: foco_harness::TestControl::start_with_tls(tls).await,
        }
    }

    pub async fn create_account(&self, name: &str) -> Account {
        foco_harness::create_test_account(&mut self.admin(), name).await
    }

    pub async fn account_key(&self, account: &str) -> String {
        self.admin()
            .create_api_key(CreateApiKeyRequest {
                account: account.to_owned(),
                description: "test".to_owned(),
                ..Default::default()
            })
            .await
            .expect("create api key")
            .into_inner()
            .key
    }

    /// Stops the App and waits for `run` to return.
    pub async fn stop(self) {
        self.inner.stop().await;
    }

    /// `GET path` on the admin listener: (status code, body).
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        foco_testkit::http_get(self.admin_addr, path).await
    }
}

pub fn hmac_verification() -> Verification {
    Verification {
        scheme: Some(verification::Scheme::HmacSha256(HmacSha256 {
            header: "X-Shopify-Hmac-Sha256".to_owned(),
            encoding: SignatureEncoding::Base64 as i32,
            prefix: String::new(),
        })),
    }
}

pub fn source_request(account: &str, name: &str, secret: &str) -> UpsertSourceRequest {
    UpsertSourceRequest {
        account: account.to_owned(),
        name: name.to_owned(),
        verification: Some(hmac_verification()),
        secret: secret.to_owned(),
        event_type_from: "header:X-Shopify-Topic".to_owned(),
        event_id_from: "header:X-Shopify-Event-Id".to_owned(),
        enabled: None,
        max_body_bytes: 0,
        ..Default::default()
    }
}

pub fn rule_request(account: &str, source: &str, name: &str) -> UpsertRuleRequest {
    UpsertRuleRequest {
        account: account.to_owned(),
        source: source.to_owned(),
        name: name.to_owned(),
        when: r#"event_type == "orders/create""#.to_owned(),
        to: vec!["+52 55 1234 5678".to_owned()],
        body: "{{ event.customer.first_name }} compró ${{ event.total_price }}".to_owned(),
        provider: String::new(),
        from: String::new(),
        priority: 0,
        enabled: None,
        ..Default::default()
    }
}

pub fn console_route(account: &str, name: &str, is_default: bool) -> UpsertProviderRouteRequest {
    UpsertProviderRouteRequest {
        account: account.to_owned(),
        name: name.to_owned(),
        kind: "console".to_owned(),
        settings: Default::default(),
        credentials: Default::default(),
        is_default,
    }
}

pub async fn create_source(
    control: &TestControl,
    account: &str,
    name: &str,
    secret: &str,
) -> Source {
    control
        .admin()
        .upsert_source(source_request(account, name, secret))
        .await
        .expect("create source")
        .into_inner()
}
