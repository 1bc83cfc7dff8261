use std::collections::HashMap;
use std::path::Path;

use foco_proto::v1::{HmacSha256, Priority, SignatureEncoding, verification};

use super::*;

const EXAMPLE: &str = r#"
account: tienda-ale
default_country: MX
timezone: America/Mexico_City
providers:
  - name: primary
    kind: console            # console | http | twilio
    default: true
  - name: twilio
    kind: twilio
    account_sid: env:TWILIO_ACCOUNT_SID
    auth_token: env:TWILIO_AUTH_TOKEN
    from: "+15005550006"
    base_url: https://api.twilio.com   # optional
  - name: hook
    kind: http
    url: http://127.0.0.1:9999/sms
    headers: { Authorization: env:HOOK_TOKEN }   # credentials
sources:
  - name: shop
    verify: { scheme: hmac-sha256, header: X-Shopify-Hmac-Sha256, encoding: base64 }   # or {scheme: none} / {scheme: standard-webhooks}
    secret: env:SHOPIFY_WEBHOOK_SECRET
    event_type: header:X-Shopify-Topic
    event_id: header:X-Shopify-Event-Id
    rules:
      - name: owner-alert
        when: 'event_type == "orders/create" && double(event.total_price) >= 500.0'
        to: ["+52 55 1234 5678"]
        body: '{{ event.customer.first_name }} acaba de comprar ${{ event.total_price }}'
        provider: primary     # optional
        priority: transactional   # or marketing
"#;

fn environment() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("TWILIO_ACCOUNT_SID", "AC123"),
        ("TWILIO_AUTH_TOKEN", "token-abc"),
        ("HOOK_TOKEN", "Bearer hook"),
        ("SHOPIFY_WEBHOOK_SECRET", "shpss_secret"),
    ])
}

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(Path::new("tienda.yaml"), text)
}

fn resolve(text: &str, env: &HashMap<&str, &str>) -> Result<Plan, ManifestError> {
    parse(text)?.resolve(&|name| env.get(name).map(|value| (*value).to_owned()))
}

fn error(result: Result<impl std::fmt::Debug, ManifestError>) -> String {
    result.expect_err("expected an error").to_string()
}

#[test]
fn the_documented_example_resolves() {
    let plan = resolve(EXAMPLE, &environment()).unwrap();
    assert_eq!(plan.account.name, "tienda-ale");
    assert_eq!(plan.account.default_country, "MX");

    let [primary, twilio, hook] = &plan.providers[..] else {
        panic!("three providers expected");
    };
    assert!(primary.request.is_default);
    assert_eq!(primary.request.kind, "console");
    assert_eq!(twilio.request.kind, "twilio");
    assert_eq!(twilio.request.credentials["account_sid"], "AC123");
    assert_eq!(twilio.request.credentials["auth_token"], "token-abc");
    assert_eq!(twilio.request.settings["from"], "+15005550006");
    assert_eq!(
        twilio.request.settings["base_url"],
        "https://api.twilio.com"
    );
    assert!(!twilio.request.settings.contains_key("auth_token"));
    assert_eq!(hook.request.settings["url"], "http://127.0.0.1:9999/sms");
    assert_eq!(hook.request.credentials["Authorization"], "Bearer hook");

    let source = &plan.sources[0];
    assert_eq!(source.request.secret, "shpss_secret");
    assert_eq!(source.request.event_type_from, "header:X-Shopify-Topic");
    assert_eq!(
        source.request.verification.as_ref().unwrap().scheme,
        Some(verification::Scheme::HmacSha256(HmacSha256 {
            header: "X-Shopify-Hmac-Sha256".to_owned(),
            encoding: SignatureEncoding::Base64 as i32,
            prefix: String::new(),
        }))
    );
    let rule = &source.rules[0];
    assert_eq!(rule.location, "sources[0].rules[0]");
    assert_eq!(rule.request.source, "shop");
    assert_eq!(rule.request.to, ["+52 55 1234 5678"]);
    assert_eq!(rule.request.priority, Priority::Transactional as i32);
    assert_eq!(rule.request.provider, "primary");
    assert!(
        rule.request
            .body
            .contains("{{ event.customer.first_name }}")
    );
}

#[test]
fn unset_environment_variables_are_named_with_their_location() {
    let mut env = environment();
    env.remove("TWILIO_AUTH_TOKEN");
    let message = error(resolve(EXAMPLE, &env));
    assert_eq!(
        message,
        "tienda.yaml: providers[1].auth_token: environment variable TWILIO_AUTH_TOKEN is not set"
    );
    let mut env = environment();
    env.insert("SHOPIFY_WEBHOOK_SECRET", "");
    assert_eq!(
        error(resolve(EXAMPLE, &env)),
        "tienda.yaml: sources[0].secret: environment variable SHOPIFY_WEBHOOK_SECRET is empty"
    );
}

#[test]
fn env_values_are_accepted_in_recipients() {
    let text = EXAMPLE.replace(r#"to: ["+52 55 1234 5678"]"#, r#"to: ["env:OWNER_PHONE"]"#);
    let mut env = environment();
    assert!(
        error(resolve(&text, &env))
            .contains("sources[0].rules[0].to[0]: environment variable OWNER_PHONE")
    );
    env.insert("OWNER_PHONE", "+5215512345678");
    assert_eq!(
        resolve(&text, &env).unwrap().sources[0].rules[0].request.to,
        ["+5215512345678"]
    );
}

#[test]
fn unknown_keys_are_errors_with_their_location() {
    let top = error(parse(&format!("{EXAMPLE}colour: blue\n")));
    assert!(
        top.starts_with("tienda.yaml: unknown field `colour`"),
        "{top}"
    );
    assert!(top.contains("at line 32 column 1"), "{top}");

    let rule = error(parse(
        &EXAMPLE.replace("priority: transactional", "delai: 1h"),
    ));
    assert!(
        rule.starts_with("tienda.yaml: sources[0].rules[0]: unknown field `delai`"),
        "{rule}"
    );
    assert!(rule.contains("at line 31"), "{rule}");

    let provider = error(parse(
        &EXAMPLE.replace("    default: true\n", "    colour: blue\n"),
    ));
    assert!(
        provider.starts_with("tienda.yaml: providers[0]: unknown field `colour`"),
        "{provider}"
    );
    assert!(provider.contains("at line 8"), "{provider}");

    let source = error(parse(
        &EXAMPLE.replace("event_id: header", "event_idd: header"),
    ));
    assert!(
        source.starts_with("tienda.yaml: sources[0]: unknown field `event_idd`"),
        "{source}"
    );
}

#[test]
fn keys_of_another_kind_are_refused() {
    let text = EXAMPLE.replace(
        "    base_url: https://api.twilio.com",
        "    url: https://api.twilio.com",
    );
    let message = error(parse(&text));
    assert!(message.contains("providers[1]"), "{message}");
    assert!(
        message.contains("key `url` does not apply to kind twilio"),
        "{message}"
    );
    assert!(message.contains("at line 9"), "{message}");

    let text = EXAMPLE.replace(
        "    default: true\n",
        "    default: true\n    headers: { X: y }\n",
    );
    assert!(error(parse(&text)).contains("key `headers` does not apply to kind console"));

    let text = EXAMPLE.replace("kind: console ", "kind: pigeon ");
    let message = error(parse(&text));
    assert!(message.contains("unknown variant `pigeon`"), "{message}");
}

#[test]
fn verification_schemes() {
    let text = EXAMPLE.replace(
        "{ scheme: hmac-sha256, header: X-Shopify-Hmac-Sha256, encoding: base64 }",
        "{ scheme: standard-webhooks }",
    );
    let plan = resolve(&text, &environment()).unwrap();
    assert!(matches!(
        plan.sources[0]
            .request
            .verification
            .as_ref()
            .unwrap()
            .scheme,
        Some(verification::Scheme::StandardWebhooks(_))
    ));
    let text = EXAMPLE.replace("encoding: base64", "encoding: base32");
    assert!(error(parse(&text)).contains("unknown variant `base32`"));
    let text = EXAMPLE.replace("encoding: base64 }", "encoding: base64, salt: x }");
    assert!(error(parse(&text)).contains("unknown field `salt`"));
}

#[test]
fn names_must_be_unique_and_one_provider_default() {
    let text = EXAMPLE.replace("  - name: hook\n", "  - name: primary\n");
    assert_eq!(
        error(resolve(&text, &environment())),
        "tienda.yaml: providers[2].name: provider \"primary\" appears twice"
    );
    let text = EXAMPLE.replace(
        "    url: http://127.0.0.1:9999/sms\n",
        "    url: http://127.0.0.1:9999/sms\n    default: true\n",
    );
    assert!(
        error(resolve(&text, &environment()))
            .contains("providers[2].default: only one provider can be the default")
    );
}

#[test]
fn missing_required_keys_are_named() {
    let text = EXAMPLE.replace("timezone: America/Mexico_City\n", "");
    assert!(error(parse(&text)).contains("missing field `timezone`"));
    let text = EXAMPLE.replace("        body: '{{ event.customer.first_name }} acaba de comprar ${{ event.total_price }}'\n", "");
    let message = error(parse(&text));
    assert!(
        message.contains("sources[0].rules[0]: missing field `body`"),
        "{message}"
    );
}

#[test]
fn templates_become_upserts_after_the_rest() {
    let text = format!(
        "{EXAMPLE}templates:\n  - name: otp\n    body: 'Tu código es {{{{ code }}}}'\n    encoding: gsm7\n  - name: welcome\n    body: 'Hola {{{{ name }}}}'\n"
    );
    let plan = resolve(&text, &environment()).unwrap();
    assert_eq!(plan.templates.len(), 2);
    let otp = &plan.templates[0];
    assert_eq!(otp.location, "templates[0]");
    assert_eq!(otp.request.account, "tienda-ale");
    assert_eq!(otp.request.name, "otp");
    assert_eq!(otp.request.body, "Tu código es {{ code }}");
    assert_eq!(otp.request.encoding, "gsm7");
    assert_eq!(plan.templates[1].request.encoding, "");

    let twice =
        format!("{EXAMPLE}templates:\n  - name: otp\n    body: a\n  - name: otp\n    body: b\n");
    assert!(
        error(resolve(&twice, &environment())).contains("templates[1].name"),
        "a name twice is refused"
    );
    let unknown_key = format!("{EXAMPLE}templates:\n  - name: otp\n    text: a\n");
    assert!(error(parse(&unknown_key)).contains("unknown field"));
}

#[test]
fn the_inbound_source_is_an_account_setting() {
    let text = EXAMPLE.replace(
        "timezone: America/Mexico_City\n",
        "timezone: America/Mexico_City\ninbound_source: sms\n",
    );
    let plan = resolve(&text, &environment()).unwrap();
    assert_eq!(plan.account.inbound_source, "sms");
    let plan = resolve(EXAMPLE, &environment()).unwrap();
    assert_eq!(plan.account.inbound_source, "");
}
