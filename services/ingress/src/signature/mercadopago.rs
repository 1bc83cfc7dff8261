//! Mercado Pago's webhook signature: `x-signature: ts=<unix>,v1=<hex>` where the
//! hex is HMAC-SHA256(secret, "id:<data.id>;request-id:<x-request-id>;ts:<ts>;").
//! `data.id` comes from the query string (`?data.id=…`, lower-cased when it is
//! alphanumeric), else from the body; a part whose value is absent is left out of
//! the signed text, as Mercado Pago's own examples do.

use axum::http::HeaderName;

use super::{
    SignatureError, SignatureScheme, SignedRequest, check_freshness, header_text, hmac_sha256,
    matches_any, timestamp_seconds, tolerance_or_default,
};

pub const MERCADOPAGO_SIGNATURE: HeaderName = HeaderName::from_static("x-signature");
pub const MERCADOPAGO_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MercadoPago {
    tolerance_seconds: u64,
}

impl MercadoPago {
    pub fn new(tolerance_seconds: u32) -> Self {
        Self {
            tolerance_seconds: tolerance_or_default(tolerance_seconds),
        }
    }
}

/// The text Mercado Pago signs.
pub fn manifest(data_id: Option<&str>, request_id: Option<&str>, ts: &str) -> String {
    let mut text = String::with_capacity(64);
    if let Some(id) = data_id {
        text.push_str("id:");
        text.push_str(&id.to_ascii_lowercase());
        text.push(';');
    }
    if let Some(request_id) = request_id {
        text.push_str("request-id:");
        text.push_str(request_id);
        text.push(';');
    }
    text.push_str("ts:");
    text.push_str(ts);
    text.push(';');
    text
}

/// `data.id` from the query string, else from the JSON body.
fn data_id(request: &SignedRequest<'_>) -> Option<String> {
    let from_query = request.query().and_then(|query| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .ok()?
            .into_iter()
            .find(|(key, _)| key == "data.id")
            .map(|(_, value)| value)
    });
    if from_query.is_some() {
        return from_query;
    }
    let body: serde_json::Value = serde_json::from_slice(request.raw_body).ok()?;
    match body.get("data")?.get("id")? {
        serde_json::Value::String(id) => Some(id.clone()),
        serde_json::Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
    .filter(|id| !id.is_empty())
}

impl SignatureScheme for MercadoPago {
    fn signature_headers(&self) -> Vec<HeaderName> {
        vec![MERCADOPAGO_SIGNATURE]
    }

    fn verify(
        &self,
        request: &SignedRequest<'_>,
        secrets: &[String],
    ) -> Result<(), SignatureError> {
        let value = header_text(request.headers, &MERCADOPAGO_SIGNATURE)?;
        let malformed = || SignatureError::Malformed(MERCADOPAGO_SIGNATURE);
        let mut ts = None;
        let mut candidates = Vec::new();
        for item in value.split(',') {
            match item.trim().split_once('=') {
                Some(("ts", text)) => ts = Some(text.trim()),
                Some(("v1", text)) => {
                    candidates.push(hex::decode(text.trim()).map_err(|_| malformed())?);
                }
                _ => {}
            }
        }
        let ts = ts.ok_or_else(malformed)?;
        let timestamp = timestamp_seconds(ts).ok_or_else(malformed)?;
        if candidates.is_empty() {
            return Err(malformed());
        }
        check_freshness(timestamp, request.now_unix_seconds, self.tolerance_seconds)?;
        let request_id = request
            .headers
            .get(MERCADOPAGO_REQUEST_ID)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty());
        let data_id = data_id(request);
        let signed = manifest(data_id.as_deref(), request_id, ts);
        let mut matched = false;
        for secret in secrets {
            let expected = hmac_sha256(secret.trim().as_bytes(), &[signed.as_bytes()]);
            matched |= matches_any(&expected, &candidates);
        }
        if matched {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// Signs like Mercado Pago; used by tests.
pub fn sign(secret: &str, data_id: Option<&str>, request_id: Option<&str>, ts: i64) -> String {
    let ts = ts.to_string();
    let mac = hmac_sha256(
        secret.as_bytes(),
        &[manifest(data_id, request_id, &ts).as_bytes()],
    );
    format!("ts={ts},v1={}", hex::encode(mac))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::test_support::secrets;
    use axum::http::HeaderMap;

    const NOW: i64 = 1_704_908_010;
    const BODY: &[u8] = br#"{"action":"payment.updated","api_version":"v1","data":{"id":"123456"},"date_created":"2024-01-10T14:53:30Z","id":112233445566,"live_mode":true,"type":"payment","user_id":987654321}"#;

    fn check(
        signature: &str,
        request_id: Option<&str>,
        path: &str,
        body: &[u8],
        keys: &[&str],
    ) -> Result<(), SignatureError> {
        let mut headers = HeaderMap::new();
        headers.insert(MERCADOPAGO_SIGNATURE, signature.parse().unwrap());
        if let Some(request_id) = request_id {
            headers.insert(MERCADOPAGO_REQUEST_ID, request_id.parse().unwrap());
        }
        let mut request = SignedRequest::new(&headers, body, NOW);
        request.path_and_query = path;
        MercadoPago::new(0).verify(&request, &secrets(keys))
    }

    #[test]
    fn the_documented_manifest() {
        assert_eq!(
            manifest(
                Some("123456"),
                Some("bb56a2f1-6aae-46ac-982e-9dcd3581d08e"),
                "1704908010"
            ),
            "id:123456;request-id:bb56a2f1-6aae-46ac-982e-9dcd3581d08e;ts:1704908010;"
        );
        assert_eq!(manifest(None, None, "1"), "ts:1;");
        assert_eq!(manifest(Some("ABC9"), None, "1"), "id:abc9;ts:1;");
    }

    #[test]
    fn query_data_id_request_id_and_timestamp_are_signed() {
        let request_id = "bb56a2f1-6aae-46ac-982e-9dcd3581d08e";
        let signature = sign("mp-secret", Some("123456"), Some(request_id), NOW);
        let path = "/v1/hooks/t?data.id=123456&type=payment";
        assert_eq!(
            check(&signature, Some(request_id), path, BODY, &["mp-secret"]),
            Ok(())
        );
        // Without the query, data.id comes from the body: the same value here.
        assert_eq!(
            check(
                &signature,
                Some(request_id),
                "/v1/hooks/t",
                BODY,
                &["mp-secret"]
            ),
            Ok(())
        );
        assert_eq!(
            check(&signature, Some("other"), path, BODY, &["mp-secret"]),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(
                &signature,
                Some(request_id),
                "/v1/hooks/t?data.id=999",
                BODY,
                &["mp-secret"]
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(
                &signature,
                Some(request_id),
                path,
                BODY,
                &["new", "mp-secret"]
            ),
            Ok(())
        );
        let stale = sign("mp-secret", Some("123456"), Some(request_id), NOW - 600);
        assert!(matches!(
            check(&stale, Some(request_id), path, BODY, &["mp-secret"]),
            Err(SignatureError::Stale { .. })
        ));
    }

    #[test]
    fn malformed_signatures() {
        for value in [
            "v1=abc",
            "ts=1704908010",
            "ts=x,v1=ab",
            "ts=1704908010,v1=zz",
        ] {
            assert_eq!(
                check(value, None, "/", BODY, &["s"]),
                Err(SignatureError::Malformed(MERCADOPAGO_SIGNATURE)),
                "{value}"
            );
        }
    }
}
