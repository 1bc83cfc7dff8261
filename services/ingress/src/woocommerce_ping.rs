//! WooCommerce sends one unsigned, form-encoded `webhook_id=<N>` request when a
//! webhook is created, and disables the webhook unless it gets a 2xx. It is not an
//! event: ingress answers `200 {"ping": true}` and publishes nothing.
//!
//! Deliberately narrow: only a form body that is exactly that single field, on a
//! request without the source's signature headers. Anything else is a normal
//! webhook and goes through verification.

use axum::http::{HeaderMap, HeaderName};

use crate::body::BodyFormat;

pub fn is_woocommerce_ping(
    format: BodyFormat,
    raw_body: &[u8],
    headers: &HeaderMap,
    signature_headers: &[HeaderName],
) -> bool {
    if format != BodyFormat::Form
        || signature_headers
            .iter()
            .any(|name| headers.contains_key(name))
    {
        return false;
    }
    let Some(id) = raw_body.strip_prefix(b"webhook_id=") else {
        return false;
    };
    !id.is_empty() && id.len() <= 20 && id.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::test_support::fixture;

    const SIGNATURE: HeaderName = HeaderName::from_static("x-wc-webhook-signature");

    #[test]
    fn the_ping_and_only_the_ping_is_recognised() {
        let headers = HeaderMap::new();
        // The shared fixture shows the ping as JSON; on the wire it is form-encoded.
        let shown: serde_json::Value =
            serde_json::from_slice(&fixture("woocommerce__webhook_ping.json")).unwrap();
        let wire = format!("webhook_id={}", shown["webhook_id"].as_str().unwrap());
        assert!(is_woocommerce_ping(
            BodyFormat::Form,
            wire.as_bytes(),
            &headers,
            &[SIGNATURE]
        ));
        for not_ping in [
            &b"webhook_id="[..],
            b"webhook_id=3&x=1",
            b"webhook_id=abc",
            b"x=1",
        ] {
            assert!(!is_woocommerce_ping(
                BodyFormat::Form,
                not_ping,
                &headers,
                &[SIGNATURE]
            ));
        }
        assert!(!is_woocommerce_ping(
            BodyFormat::Json,
            b"webhook_id=3",
            &headers,
            &[SIGNATURE]
        ));
        let mut signed = HeaderMap::new();
        signed.insert(SIGNATURE, "c2ln".parse().unwrap());
        assert!(!is_woocommerce_ping(
            BodyFormat::Form,
            b"webhook_id=3",
            &signed,
            &[SIGNATURE]
        ));
    }
}
