//! A rule compiled once per version: its CEL programs, its templates and its
//! timing, encoding and cap settings.

use std::collections::HashSet;
use std::time::Duration;

use foco_proto::v1::Rule;
use minijinja::Environment;

use crate::condition::{Condition, Reads};
use crate::encoding::{self, SegmentInfo};
use crate::template::{self, TemplateError};
use crate::timing;
use crate::{Cap, CompileError, EventInputs, MAX_BODY_CHARS, OnRepeat, RuleError};

enum Recipient {
    Fixed(String),
    Template { template_name: String },
}

const BODY: &str = "body";
const KEY: &str = "key";
const SEND_AT: &str = "send_at";
const CANCEL_KEY: &str = "cancel_key";

pub struct CompiledRule {
    condition: Option<Condition>,
    templates: Environment<'static>,
    recipients: Vec<Recipient>,
    has_key: bool,
    has_send_at: bool,
    delay: Option<Duration>,
    /// The rule's own validity; `None` takes the account's default.
    valid_for: Option<Duration>,
    cancel_condition: Option<Condition>,
    pub(crate) on_repeat: OnRepeat,
    transliterate: bool,
    max_segments: u32,
    pub(crate) cap: Option<Cap>,
    /// What the templates read of the event's payload.
    template_reads: Reads,
}

/// One recipient as rendered, and its E.164 form or why it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientOutcome {
    pub raw: String,
    pub e164: Result<String, String>,
}

/// A rule whose condition matched, rendered for one event.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Every rendered recipient, deduplicated after normalisation, up to the
    /// engine's limit per rule.
    pub recipients: Vec<RecipientOutcome>,
    /// Rendered recipients past that limit: not read, not sent.
    pub recipients_over_limit: usize,
    /// The body as it will be sent (transliterated when the rule asks for GSM-7).
    pub body: String,
    pub segments: SegmentInfo,
    /// Characters that force UCS-2.
    pub ucs2_characters: Vec<char>,
    /// Unix ms when a delayed job is due; `None` sends at once.
    pub due_at_ms: Option<i64>,
    /// The jobs' deadline (unix ms): the due time (the event's arrival for an
    /// immediate job) plus the rule's or the account's validity.
    pub expires_at_ms: i64,
    /// The rendered correlation key; empty when the rule has none.
    pub key: String,
}

fn compile_template(
    templates: &mut Environment<'static>,
    name: &str,
    source: &str,
) -> Result<(), CompileError> {
    templates
        .add_template_owned(name.to_owned(), source.to_owned())
        .map_err(|error| CompileError::Template {
            field: name.to_owned(),
            message: error.to_string(),
        })
}

/// What `templates` read of `event`: the top-level fields they name
/// (`event.customer.name` reads `customer`), or all of it when one uses
/// `event` otherwise (indexes it, loops over it, passes or prints it whole).
/// Templates reach nothing beyond their environment, which holds no loader, so
/// reading every template there finds every use.
fn payload_reads(templates: &Environment<'static>) -> Reads {
    let mut reads = Reads::Nothing;
    for (_, template) in templates.templates() {
        for variable in template.undeclared_variables(true) {
            match variable.strip_prefix("event") {
                Some("") => return Reads::Everything,
                Some(path) => {
                    if let Some(field) = path.strip_prefix('.') {
                        reads.add_field(field.split('.').next().unwrap_or(field));
                    }
                }
                None => {}
            }
        }
    }
    reads
}

/// A value rendered for one event that cannot be used.
fn invalid(field: &str, message: impl Into<String>) -> RuleError {
    RuleError::Setting {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// A setting of the rule itself that cannot be used.
fn unusable(field: &str, message: impl Into<String>) -> CompileError {
    CompileError::Setting {
        field: field.to_owned(),
        message: message.into(),
    }
}

impl CompiledRule {
    pub fn compile(rule: &Rule) -> Result<Self, CompileError> {
        let condition = match rule.when.trim() {
            "" => None,
            source => Some(Condition::compile(source).map_err(CompileError::Condition)?),
        };
        let mut templates = template::environment();
        compile_template(&mut templates, BODY, &rule.body)?;
        let mut recipients = Vec::with_capacity(rule.to.len());
        for (index, recipient) in rule.to.iter().enumerate() {
            if template::is_template(recipient) {
                let template_name = format!("to[{index}]");
                compile_template(&mut templates, &template_name, recipient)?;
                recipients.push(Recipient::Template { template_name });
            } else {
                recipients.push(Recipient::Fixed(recipient.trim().to_owned()));
            }
        }
        let has_key = !rule.key.trim().is_empty();
        if has_key {
            compile_template(&mut templates, KEY, &rule.key)?;
        }
        let has_send_at = !rule.send_at.trim().is_empty();
        if has_send_at {
            compile_template(&mut templates, SEND_AT, &rule.send_at)?;
        }
        let delay = match rule.delay.trim() {
            "" => None,
            text => Some(timing::parse_delay(text).map_err(|message| unusable("delay", message))?),
        };
        if delay.is_some() && has_send_at {
            return Err(unusable(
                "send_at",
                "give either delay or send_at, not both",
            ));
        }
        let valid_for = match rule.valid_for.trim() {
            "" => None,
            text => Some(
                timing::parse_valid_for(text).map_err(|message| unusable("valid_for", message))?,
            ),
        };
        let cancel_condition = match rule.cancel_when.trim() {
            "" => None,
            source => {
                if !has_key {
                    return Err(unusable(
                        "cancel_when",
                        "needs key: the correlation key of the jobs to cancel",
                    ));
                }
                if rule.cancel_key.trim().is_empty() {
                    return Err(unusable(
                        "cancel_when",
                        "needs cancel_key: the key rendered on the cancelling event",
                    ));
                }
                compile_template(&mut templates, CANCEL_KEY, &rule.cancel_key)?;
                Some(
                    Condition::compile(source)
                        .map_err(|message| unusable("cancel_when", message))?,
                )
            }
        };
        if cancel_condition.is_none() && !rule.cancel_key.trim().is_empty() {
            return Err(unusable("cancel_key", "is only used with cancel_when"));
        }
        let on_repeat = on_repeat(rule)?;
        let transliterate = transliterates(rule)?;
        let cap = cap(rule)?;
        let template_reads = payload_reads(&templates);
        Ok(Self {
            condition,
            templates,
            recipients,
            has_key,
            has_send_at,
            delay,
            valid_for,
            cancel_condition,
            on_repeat,
            transliterate,
            max_segments: rule.max_segments,
            cap,
            template_reads,
        })
    }

    pub fn is_delayed(&self) -> bool {
        self.delay.is_some() || self.has_send_at
    }

    /// `Ok(None)` when the condition is false.
    /// Adds what this rule's conditions read of the event to `reads`.
    pub(crate) fn add_reads(&self, reads: &mut crate::condition::VariableReads) {
        for condition in [&self.condition, &self.cancel_condition]
            .into_iter()
            .flatten()
        {
            reads.merge(condition.reads());
        }
    }

    /// Adds what this rule's conditions and templates read of the event's
    /// payload to `reads`: what of it must be parsed.
    pub(crate) fn add_payload_reads(&self, reads: &mut Reads) {
        for condition in [&self.condition, &self.cancel_condition]
            .into_iter()
            .flatten()
        {
            reads.merge(&condition.reads().event);
        }
        reads.merge(&self.template_reads);
    }

    pub fn evaluate(&self, inputs: &EventInputs) -> Result<Option<Evaluation>, RuleError> {
        if let Some(condition) = &self.condition
            && !condition.matches(inputs)?
        {
            return Ok(None);
        }
        let rendered = self.render(BODY, inputs)?;
        let mut body = rendered.trim().to_owned();
        if body.is_empty() {
            return Err(RuleError::EmptyBody);
        }
        let ucs2_characters = encoding::non_gsm7_characters(&body);
        if self.transliterate {
            body = encoding::transliterate_to_gsm7(&body);
        }
        let chars = body.chars().count();
        if chars > MAX_BODY_CHARS {
            return Err(RuleError::BodyTooLong { chars });
        }
        let segments = encoding::analyze(&body);
        if self.max_segments > 0 && segments.segments > self.max_segments as usize {
            return Err(RuleError::TooManySegments {
                segments: segments.segments,
                encoding: segments.encoding.as_str(),
                max: self.max_segments,
            });
        }
        let (recipients, recipients_over_limit) = self.recipients(inputs)?;
        let key = if self.has_key {
            bounded_key(KEY, self.render(KEY, inputs)?.trim())?
        } else {
            String::new()
        };
        let due_at_ms = self.due_at_ms(inputs)?;
        // A send_at already past is due at once, but its validity counts from
        // the time it names: a reminder of a long-gone appointment expires.
        let expires_at_ms = foco_bus::validity::deadline_ms(
            due_at_ms.unwrap_or(inputs.received_at_ms),
            self.valid_for.unwrap_or(inputs.account_valid_for),
        );
        Ok(Some(Evaluation {
            recipients,
            recipients_over_limit,
            body,
            segments,
            ucs2_characters,
            due_at_ms,
            expires_at_ms,
            key,
        }))
    }

    /// The rendered recipients, normalised and deduplicated, at most
    /// `inputs.max_recipients_per_rule` of them; and how many were left out. A
    /// template may render a list from the payload ("a, b; c"): a payload must
    /// not be able to turn one event into thousands of SMS, nor make the engine
    /// read thousands of numbers.
    fn recipients(
        &self,
        inputs: &EventInputs,
    ) -> Result<(Vec<RecipientOutcome>, usize), RuleError> {
        let limit = inputs.max_recipients_per_rule;
        let mut recipients: Vec<RecipientOutcome> =
            Vec::with_capacity(self.recipients.len().min(limit));
        let mut seen: HashSet<String> = HashSet::with_capacity(self.recipients.len().min(limit));
        let mut over_limit = 0;
        for (index, recipient) in self.recipients.iter().enumerate() {
            let rendered_template;
            let parts: Vec<&str> = match recipient {
                Recipient::Fixed(number) => vec![number.as_str()],
                Recipient::Template { template_name } => {
                    rendered_template = self.render(template_name, inputs)?;
                    rendered_template
                        .split([',', ';', '\n'])
                        .map(str::trim)
                        .filter(|part| !part.is_empty())
                        .collect()
                }
            };
            if parts.is_empty() {
                return Err(RuleError::EmptyRecipient { index });
            }
            for raw in parts {
                if recipients.len() >= limit {
                    over_limit += 1;
                    continue;
                }
                let e164 = foco_phone::normalize_e164(raw, &inputs.default_country)
                    .map_err(|error| error.to_string());
                // Valid numbers are the same recipient however they were written;
                // invalid ones are told apart by what was written.
                let identity = match &e164 {
                    Ok(e164) => format!("+{e164}"),
                    Err(_) => format!("raw:{raw}"),
                };
                if seen.insert(identity) {
                    recipients.push(RecipientOutcome {
                        raw: raw.to_owned(),
                        e164,
                    });
                }
            }
        }
        Ok((recipients, over_limit))
    }

    /// The key of this rule's pending jobs that `inputs` cancels, if its cancel
    /// clause matches.
    pub fn cancellation_key(&self, inputs: &EventInputs) -> Result<Option<String>, RuleError> {
        let Some(cancel_condition) = &self.cancel_condition else {
            return Ok(None);
        };
        if !cancel_condition.matches(inputs)? {
            return Ok(None);
        }
        let key = bounded_key(CANCEL_KEY, self.render(CANCEL_KEY, inputs)?.trim())?;
        if key.is_empty() {
            return Err(invalid(
                "cancel_key",
                "rendered empty on the cancelling event",
            ));
        }
        Ok(Some(key))
    }

    fn due_at_ms(&self, inputs: &EventInputs) -> Result<Option<i64>, RuleError> {
        if let Some(delay) = self.delay {
            let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            return Ok(Some(inputs.received_at_ms.saturating_add(delay_ms)));
        }
        if self.has_send_at {
            let rendered = self.render(SEND_AT, inputs)?;
            let instant = timing::parse_instant_in(&rendered, inputs.timezone)
                .map_err(|message| invalid("send_at", message))?;
            return Ok(Some(instant.timestamp_millis()));
        }
        Ok(None)
    }

    fn render(&self, name: &str, inputs: &EventInputs) -> Result<String, RuleError> {
        let to_error = |source: TemplateError| RuleError::Template {
            field: name.to_owned(),
            source,
        };
        let template = self
            .templates
            .get_template(name)
            .map_err(|error| to_error(error.into()))?;
        template
            .render(inputs.template_context())
            .map(without_control_characters)
            .map_err(|error| to_error(error.into()))
    }
}

/// `on_repeat`: what a repeated trigger with the same key does.
fn on_repeat(rule: &Rule) -> Result<OnRepeat, CompileError> {
    match rule.on_repeat.trim() {
        "" | "replace" => Ok(OnRepeat::Replace),
        "keep_first" => Ok(OnRepeat::KeepFirst),
        other => Err(unusable(
            "on_repeat",
            format!("{other:?} is not replace or keep_first"),
        )),
    }
}

/// `encoding`: whether the body is transliterated to GSM-7.
fn transliterates(rule: &Rule) -> Result<bool, CompileError> {
    match rule.encoding.trim() {
        "" | "unicode" => Ok(false),
        "gsm7" => Ok(true),
        other => Err(unusable(
            "encoding",
            format!("{other:?} is not unicode or gsm7"),
        )),
    }
}

/// `cap_count` and `cap_window`: both or neither.
fn cap(rule: &Rule) -> Result<Option<Cap>, CompileError> {
    match (rule.cap_count, rule.cap_window.trim()) {
        (0, "") => Ok(None),
        (0, _) => Err(unusable("cap_count", "cap_window needs cap_count")),
        (_, "") => Err(unusable(
            "cap_window",
            "cap_count needs cap_window, e.g. 24h",
        )),
        (count, window) => Ok(Some(Cap {
            count,
            window: timing::parse_delay(window)
                .map_err(|message| unusable("cap_window", message))?,
        })),
    }
}

/// Longest correlation key, in characters: keys are indexed in Postgres, whose
/// index rows are limited to about 2.7 kB.
pub const MAX_KEY_CHARS: usize = 256;

fn bounded_key(field: &str, key: &str) -> Result<String, RuleError> {
    let chars = key.chars().count();
    if chars > MAX_KEY_CHARS {
        return Err(invalid(
            field,
            format!("rendered {chars} characters, more than {MAX_KEY_CHARS}"),
        ));
    }
    Ok(key.to_owned())
}

/// What a template rendered from a payload, without control characters: a NUL
/// byte is refused by Postgres on every attempt, and no SMS needs one. Line
/// breaks stay; a tab becomes a space.
pub(crate) fn without_control_characters(text: String) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\n') {
        return text;
    }
    text.chars()
        .filter_map(|c| match c {
            '\n' => Some('\n'),
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}
