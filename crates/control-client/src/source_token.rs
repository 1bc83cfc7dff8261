//! The form of a webhook source token: `src_` and 43 characters of unpadded
//! URL-safe base64 (32 random bytes). Control makes tokens of this form, and
//! ingress refuses a webhook URL whose token has another without looking it up,
//! so that a flood of made-up tokens costs neither a cache entry nor a call.

/// What every source token starts with.
pub const SOURCE_TOKEN_PREFIX: &str = "src_";

/// Characters after the prefix: 32 random bytes as unpadded URL-safe base64.
pub const SOURCE_TOKEN_RANDOM_CHARS: usize = 43;

/// Where a source's webhooks are posted: `<ingress base URL>/v1/hooks/<token>`.
pub fn webhook_url(ingress_url: &str, token: &str) -> String {
    format!("{}/v1/hooks/{token}", ingress_url.trim_end_matches('/'))
}

/// Whether `token` has the form of a source token (not whether one exists).
pub fn is_well_formed_source_token(token: &str) -> bool {
    token
        .strip_prefix(SOURCE_TOKEN_PREFIX)
        .is_some_and(|random| {
            random.len() == SOURCE_TOKEN_RANDOM_CHARS
                && random
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_prefix_and_43_url_safe_characters_make_a_token() {
        assert!(is_well_formed_source_token(
            "src_UGKRx5EgnQx9JbcuzB5w9Zq-7Jp6gMG1DneNyIUypmA"
        ));
        for malformed in [
            "",
            "src_",
            "no-such-token",
            "src_UGKRx5EgnQx9JbcuzB5w9Zq-7Jp6gMG1DneNyIUypm",
            "src_UGKRx5EgnQx9JbcuzB5w9Zq-7Jp6gMG1DneNyIUypmAA",
            "SRC_UGKRx5EgnQx9JbcuzB5w9Zq-7Jp6gMG1DneNyIUypmA",
            "key_UGKRx5EgnQx9JbcuzB5w9Zq-7Jp6gMG1DneNyIUypmA",
            "src_UGKRx5EgnQx9JbcuzB5w9Zq+7Jp6gMG1DneNyIUypmA",
            "src_UGKRx5EgnQx9JbcuzB5w9Zq/7Jp6gMG1DneNyIUypmA",
            "src_UGKRx5EgnQx9JbcuzB5w9Zq 7Jp6gMG1DneNyIUypmA",
            "src_UGKRx5EgnQx9JbcuzB5w9Zq-7Jp6gMG1DneNyIUyp\u{e9}",
        ] {
            assert!(!is_well_formed_source_token(malformed), "{malformed:?}");
        }
    }
}
