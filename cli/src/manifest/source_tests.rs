//! Source presets, rotation lists and limits in the file.

use std::path::Path;

use foco_proto::v1::{HmacAlgorithm, SignatureEncoding, verification};

use super::*;

fn resolve(sources: &str) -> Result<Plan, ManifestError> {
    let text = format!(
        "account: tienda-ale\ndefault_country: MX\ntimezone: America/Mexico_City\nsources:\n{sources}"
    );
    let env = |name: &str| match name {
        "NEW" => Some("new-secret".to_owned()),
        "OLD" => Some("old-secret".to_owned()),
        _ => None,
    };
    Manifest::parse(Path::new("tienda.yaml"), &text)?.resolve(&env)
}

fn error(sources: &str) -> String {
    resolve(sources).expect_err("expected an error").to_string()
}

#[test]
fn a_preset_with_rotation_tolerance_and_limits() {
    let plan = resolve(
        r"
  - name: payments
    preset: stripe
    secrets: [env:NEW, env:OLD]
    tolerance: 10m
    rate_limit: 100/s
",
    )
    .unwrap();
    let request = &plan.sources[0].request;
    assert_eq!(request.preset, "stripe");
    assert_eq!(
        request.verification, None,
        "control fills the preset's scheme"
    );
    assert_eq!(request.secrets, vec!["new-secret", "old-secret"]);
    assert_eq!(request.secret, "");
    assert_eq!(request.timestamp_tolerance_seconds, 600);
    assert_eq!(request.rate_limit_per_second, 100);
    assert_eq!(request.rate_limit_burst, 0);
}

#[test]
fn shopify_and_detailed_limits() {
    let plan = resolve(
        r"
  - name: shop
    preset: shopify
    secret: env:NEW
    content_type: json
    rate_limit: { per_second: 50, burst: 200 }
",
    )
    .unwrap();
    let request = &plan.sources[0].request;
    assert_eq!(request.preset, "shopify");
    assert_eq!(request.secret, "new-secret");
    assert_eq!(request.content_type, "json");
    assert_eq!(
        (request.rate_limit_per_second, request.rate_limit_burst),
        (50, 200)
    );
}

#[test]
fn the_generic_preset_carries_its_signature() {
    let plan = resolve(
        r#"
  - name: crm
    preset: generic
    secret: env:NEW
    signature:
      header: X-Signature
      algorithm: sha512
      encoding: hex
      prefix: "sha512="
      timestamp_header: X-Timestamp
      signed_content: "{timestamp}.{body}"
    tolerance: 120
"#,
    )
    .unwrap();
    let request = &plan.sources[0].request;
    assert_eq!(request.preset, "generic");
    let Some(verification::Scheme::GenericHmac(generic)) = request
        .verification
        .as_ref()
        .and_then(|verification| verification.scheme.clone())
    else {
        panic!("a generic scheme");
    };
    assert_eq!(generic.header, "X-Signature");
    assert_eq!(generic.algorithm, HmacAlgorithm::Sha512 as i32);
    assert_eq!(generic.encoding, SignatureEncoding::Hex as i32);
    assert_eq!(generic.prefix, "sha512=");
    assert_eq!(generic.timestamp_header, "X-Timestamp");
    assert_eq!(generic.signed_content, "{timestamp}.{body}");
    assert_eq!(request.timestamp_tolerance_seconds, 120);
}

#[test]
fn mistakes_are_reported_with_their_location() {
    assert!(error("  - name: s\n    preset: paypal\n").contains("unknown variant"));
    assert!(
        error("  - name: s\n    preset: shopify\n    verify: { scheme: none }\n")
            .contains("sources[0].verify")
    );
    assert!(error("  - name: s\n    preset: generic\n").contains("sources[0].signature"));
    assert!(
        error("  - name: s\n    preset: shopify\n    signature: { header: X, encoding: hex }\n")
            .contains("only preset generic")
    );
    assert!(
        error("  - name: s\n    preset: shopify\n    tolerance: 10m\n")
            .contains("sources[0].tolerance")
    );
    assert!(error("  - name: s\n    preset: stripe\n    tolerance: soon\n").contains("duration"));
    assert!(
        error("  - name: s\n    secret: env:NEW\n    secrets: [env:OLD]\n")
            .contains("sources[0].secrets")
    );
    assert!(error("  - name: s\n    secrets: [a, b, c]\n").contains("one or two secrets"));
    assert!(error("  - name: s\n    secrets: [env:MISSING]\n").contains("sources[0].secrets[0]"));
    assert!(error("  - name: s\n    rate_limit: 0\n").contains("at least 1"));
    assert!(error("  - name: s\n    rate_limit: fast\n").contains("100/s"));
}
