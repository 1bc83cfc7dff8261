//! Rule keys for timing, correlation, encoding and caps (`delay`, `send_at`,
//! `valid_for`, `key`, `cancel_when`, `cancel_key`, `on_repeat`, `encoding`, `max_segments`,
//! `cap`), and their translation into `UpsertRuleRequest` fields.
//!
//! Control validates the contents (durations, CEL, templates) and answers with
//! the reason; here only what the file alone shows is checked: keys that make no
//! sense without another one, or that exclude each other, so `--dry-run` catches
//! them with their YAML location.

use foco_proto::v1::UpsertRuleRequest;
use serde::Deserialize;

use super::{Manifest, ManifestError, RuleSpec};

/// A repeated trigger with the same `key` while a job is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRepeatSpec {
    /// The new event's job replaces the pending one (the default).
    Replace,
    /// The pending job stays; the new trigger is ignored.
    KeepFirst,
}

impl OnRepeatSpec {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replace => "replace",
            Self::KeepFirst => "keep_first",
        }
    }
}

/// What to do with characters outside GSM-7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyEncodingSpec {
    /// Keep the text; one such character makes the message UCS-2 (the default).
    Unicode,
    /// Transliterate to GSM-7 (á → a), so Spanish text stays 160 characters a segment.
    Gsm7,
}

impl BodyEncodingSpec {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unicode => "unicode",
            Self::Gsm7 => "gsm7",
        }
    }
}

/// At most `count` messages per recipient within `window` (e.g. `24h`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapSpec {
    pub count: u32,
    pub window: String,
}

impl Manifest {
    /// Copies the timing and encoding keys of `rule` (at `location`) into `request`.
    pub(super) fn apply_schedule_keys(
        &self,
        location: &str,
        rule: &RuleSpec,
        request: &mut UpsertRuleRequest,
    ) -> Result<(), ManifestError> {
        self.check_schedule_keys(location, rule)?;
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        request.delay = text(&rule.delay);
        request.send_at = text(&rule.send_at);
        request.valid_for = text(&rule.valid_for);
        request.key = text(&rule.key);
        request.cancel_when = text(&rule.cancel_when);
        request.cancel_key = text(&rule.cancel_key);
        request.on_repeat = rule
            .on_repeat
            .map(|on_repeat| on_repeat.as_str().to_owned())
            .unwrap_or_default();
        request.encoding = rule
            .encoding
            .map(|encoding| encoding.as_str().to_owned())
            .unwrap_or_default();
        request.max_segments = rule.max_segments.unwrap_or_default();
        if let Some(cap) = &rule.cap {
            request.cap_count = cap.count;
            request.cap_window = cap.window.clone();
        }
        Ok(())
    }

    fn check_schedule_keys(&self, location: &str, rule: &RuleSpec) -> Result<(), ManifestError> {
        let at = |key: &str| format!("{location}.{key}");
        let blank = |value: &Option<String>| value.as_deref().is_some_and(|v| v.trim().is_empty());
        for (key, value) in [
            ("delay", &rule.delay),
            ("send_at", &rule.send_at),
            ("valid_for", &rule.valid_for),
            ("key", &rule.key),
            ("cancel_when", &rule.cancel_when),
            ("cancel_key", &rule.cancel_key),
        ] {
            if blank(value) {
                return Err(self.invalid(at(key), "is empty; leave the key out instead"));
            }
        }
        if rule.delay.is_some() && rule.send_at.is_some() {
            return Err(self.invalid(
                at("send_at"),
                "`delay` and `send_at` exclude each other: give one of them",
            ));
        }
        match (&rule.cancel_when, &rule.cancel_key) {
            (Some(_), None) => {
                return Err(self.invalid(
                    at("cancel_when"),
                    "needs `cancel_key`: the template that, rendered on the cancelling event, equals this rule's `key`",
                ));
            }
            (None, Some(_)) => {
                return Err(self.invalid(
                    at("cancel_key"),
                    "needs `cancel_when`: the condition an event must meet to cancel",
                ));
            }
            _ => {}
        }
        if rule.key.is_none() {
            if rule.cancel_when.is_some() {
                return Err(self.invalid(
                    at("cancel_when"),
                    "needs `key`: pending jobs are cancelled by their correlation key",
                ));
            }
            if rule.on_repeat.is_some() {
                return Err(self.invalid(
                    at("on_repeat"),
                    "needs `key`: a repeat is a new trigger with the same correlation key",
                ));
            }
        }
        if rule.max_segments == Some(0) {
            return Err(self.invalid(
                at("max_segments"),
                "must be at least 1; leave the key out for no limit",
            ));
        }
        if let Some(cap) = &rule.cap {
            if cap.count == 0 {
                return Err(self.invalid(
                    at("cap.count"),
                    "must be at least 1; leave `cap` out for no cap",
                ));
            }
            if cap.window.trim().is_empty() {
                return Err(self.invalid(at("cap.window"), "needs a duration, e.g. 24h"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
