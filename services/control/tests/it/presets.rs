//! Sender presets fill in a source's scheme, event type and id locations and
//! content type; sources also carry rate limits and explicit secret lists.

use foco_proto::v1::verification::Scheme;
use foco_proto::v1::{
    GenericHmac, ResolveSourceRequest, SignatureEncoding, StripeSignature, UpsertSourceRequest,
    Verification,
};
use tonic::Code;

use crate::harness::TestControl;

fn preset_request(name: &str, preset: &str, secret: &str) -> UpsertSourceRequest {
    UpsertSourceRequest {
        account: "acme".to_owned(),
        name: name.to_owned(),
        preset: preset.to_owned(),
        secret: secret.to_owned(),
        ..Default::default()
    }
}

async fn resolved_secrets(control: &TestControl, token: &str) -> Vec<String> {
    control
        .admin()
        .resolve_source(ResolveSourceRequest {
            token: token.to_owned(),
            source_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .secrets
}

#[tokio::test]
async fn presets_are_expanded_stored_and_returned() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    let mut admin = control.admin();

    let shop = admin
        .upsert_source(preset_request("shop", "shopify", "shpss"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shop.preset, "shopify");
    assert_eq!(shop.event_type_from, "header:X-Shopify-Topic");
    assert_eq!(
        shop.event_id_from,
        "header:X-Shopify-Event-Id|header:X-Shopify-Webhook-Id"
    );
    assert_eq!(shop.content_type, "json");
    assert_eq!(shop.secret_count, 1);
    let Some(Scheme::HmacSha256(hmac)) = shop.verification.and_then(|v| v.scheme) else {
        panic!("shopify verifies with hmac-sha256");
    };
    assert_eq!(hmac.header, "X-Shopify-Hmac-Sha256");
    assert_eq!(hmac.encoding, SignatureEncoding::Base64 as i32);

    let mut stripe = preset_request("payments", "stripe", "whsec_x");
    stripe.timestamp_tolerance_seconds = 600;
    stripe.rate_limit_per_second = 50;
    stripe.rate_limit_burst = 200;
    let payments = admin.upsert_source(stripe).await.unwrap().into_inner();
    assert_eq!(payments.event_id_from, "body:id");
    assert_eq!(payments.event_type_from, "body:type");
    assert_eq!(payments.rate_limit_per_second, 50);
    assert_eq!(payments.rate_limit_burst, 200);
    let Some(Scheme::Stripe(settings)) = payments.verification.and_then(|v| v.scheme) else {
        panic!("stripe verifies with its own scheme");
    };
    assert_eq!(settings.tolerance_seconds, 600);

    let twilio = admin
        .upsert_source(preset_request("sms", "twilio", "auth-token"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(twilio.content_type, "form");
    assert_eq!(twilio.event_id_from, "body:MessageSid|body:SmsSid");

    // What was stored is what is listed and what lookups see.
    let listed = admin
        .list_sources(foco_proto::v1::ListSourcesRequest {
            account: "acme".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .sources;
    let presets: Vec<&str> = listed.iter().map(|source| source.preset.as_str()).collect();
    assert_eq!(presets, ["stripe", "shopify", "twilio"]);
}

#[tokio::test]
async fn bad_preset_settings_are_refused() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    let mut admin = control.admin();
    let refused = |request: UpsertSourceRequest| {
        let mut admin = control.admin();
        async move { admin.upsert_source(request).await.unwrap_err() }
    };

    let status = refused(preset_request("s", "paypal", "x")).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("stripe"), "{}", status.message());

    // A signed preset needs a secret; `none` does not.
    assert_eq!(
        refused(preset_request("s", "hotmart", "")).await.code(),
        Code::InvalidArgument
    );
    admin
        .upsert_source(preset_request("open", "none", ""))
        .await
        .unwrap();

    assert_eq!(
        refused(preset_request("s", "generic", "x")).await.code(),
        Code::InvalidArgument
    );
    let mut generic = preset_request("crm", "generic", "x");
    generic.verification = Some(Verification {
        scheme: Some(Scheme::GenericHmac(GenericHmac {
            header: "X-Sig".to_owned(),
            encoding: SignatureEncoding::Hex as i32,
            signed_content: "{nope}".to_owned(),
            ..Default::default()
        })),
    });
    assert_eq!(refused(generic).await.code(), Code::InvalidArgument);

    let mut tolerance = preset_request("s", "shopify", "x");
    tolerance.timestamp_tolerance_seconds = 60;
    assert_eq!(refused(tolerance).await.code(), Code::InvalidArgument);

    // A week-long window would make replays easy: a day is the most.
    let mut week = preset_request("s", "stripe", "x");
    week.verification = Some(Verification {
        scheme: Some(Scheme::Stripe(StripeSignature {
            tolerance_seconds: 7 * 86_400,
        })),
    });
    let status = refused(week).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("at most 86400 seconds"),
        "{}",
        status.message()
    );

    let mut burst = preset_request("s", "shopify", "x");
    burst.rate_limit_burst = 10;
    assert_eq!(refused(burst).await.code(), Code::InvalidArgument);

    let mut content = preset_request("s", "shopify", "x");
    content.content_type = "xml".to_owned();
    assert_eq!(refused(content).await.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn an_explicit_secret_list_replaces_the_stored_secrets() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    let mut admin = control.admin();
    let source = admin
        .upsert_source(preset_request("shop", "shopify", "one"))
        .await
        .unwrap()
        .into_inner();

    let mut both = preset_request("shop", "shopify", "");
    both.secrets = vec!["two".to_owned(), "one".to_owned()];
    let updated = admin
        .upsert_source(both.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.secret_count, 2);
    assert_eq!(
        resolved_secrets(&control, &source.token).await,
        ["two", "one"]
    );
    // Re-applying the same list changes nothing; dropping the old one retires it.
    admin.upsert_source(both).await.unwrap();
    assert_eq!(
        resolved_secrets(&control, &source.token).await,
        ["two", "one"]
    );
    let mut only_new = preset_request("shop", "shopify", "");
    only_new.secrets = vec!["two".to_owned()];
    admin.upsert_source(only_new).await.unwrap();
    assert_eq!(resolved_secrets(&control, &source.token).await, ["two"]);

    let mut three = preset_request("shop", "shopify", "");
    three.secrets = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
    assert_eq!(
        admin.upsert_source(three).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let mut mixed = preset_request("shop", "shopify", "x");
    mixed.secrets = vec!["a".to_owned()];
    assert_eq!(
        admin.upsert_source(mixed).await.unwrap_err().code(),
        Code::InvalidArgument
    );
}
