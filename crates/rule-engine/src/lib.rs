//! The Foco rule engine. Turns one event into SMS jobs: for each enabled rule of
//! the event's source, the CEL condition decides, the recipients and the body are
//! rendered with minijinja, recipients are normalised to E.164 and deduplicated,
//! the body's encoding and segments are computed, and each (rule, recipient)
//! becomes a job with a deterministic id, sent at once or due at a time. Rules of
//! the whole account with a cancel clause tell which pending jobs the event cancels.
//!
//! Pure and synchronous: no bus, no database, no network. A rule that fails (bad
//! expression, missing variable, too many segments) is reported and the other
//! rules still run. Control uses the same engine to validate and preview rules.

mod compiled;
mod condition;
pub mod encoding;
pub mod filters;
mod json_view;
mod message;
mod payload;
mod template;
mod timing;

use std::sync::Arc;
use std::time::Duration;

use foco_proto::v1::{Account, EventEnvelope, Priority, ResolvedSource, Rule, SmsJob};
use moka::sync::Cache;

pub use compiled::{CompiledRule, Evaluation, MAX_KEY_CHARS, RecipientOutcome};
pub use condition::{
    ConditionError, MAX_COMPREHENSION_NESTING, MAX_CONDITION_CHARS, MAX_CONDITION_DEPTH,
    MAX_ITERATION_STEPS, max_iterated_list, validate_condition,
};
pub use message::{
    ACCOUNT_VARIABLE, MAX_TEMPLATE_CHARS, MessageAccount, MessageTemplateError, RenderedMessage,
    render_message, template_variables,
};
pub use template::{
    TemplateError, TemplateSyntaxError, syntax_error as template_syntax_error, validate_template,
};
pub use timing::{
    DEFAULT_VALID_FOR, MAX_DELAY, MIN_VALID_FOR, parse_delay, parse_instant_in, parse_valid_for,
    valid_for_or_default,
};

/// Longest body a rule may render (ten concatenated GSM-7 segments).
pub const MAX_BODY_CHARS: usize = 1530;

/// Why a rule cannot run at all: refused when it is saved, and reported for
/// every event that reaches a stored rule the engine cannot compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("condition does not compile: {0}")]
    Condition(String),
    #[error("template does not compile ({field}): {message}")]
    Template { field: String, message: String },
    #[error("{field}: {message}")]
    Setting { field: String, message: String },
}

/// Why one rule produced nothing for one event.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error("condition failed: {0}")]
    Condition(#[from] ConditionError),
    #[error("template failed ({field}): {source}")]
    Template {
        field: String,
        #[source]
        source: TemplateError,
    },
    #[error("{field}: {message}")]
    Setting { field: String, message: String },
    #[error("recipient {index} rendered empty")]
    EmptyRecipient { index: usize },
    #[error("body rendered empty")]
    EmptyBody,
    #[error("body has {chars} characters, more than the limit of {MAX_BODY_CHARS}")]
    BodyTooLong { chars: usize },
    #[error("body is {segments} {encoding} segments, more than max_segments {max}")]
    TooManySegments {
        segments: usize,
        encoding: &'static str,
        max: u32,
    },
}

/// What a repeated trigger with the same correlation key does to a pending job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRepeat {
    Replace,
    KeepFirst,
}

impl OnRepeat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replace => "replace",
            Self::KeepFirst => "keep_first",
        }
    }
}

/// At most `count` jobs per recipient within `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub count: u32,
    pub window: Duration,
}

#[derive(Debug)]
pub struct RuleFailure {
    pub rule_id: String,
    pub rule_name: String,
    pub error: RuleError,
}

/// One job to store: published at once when `due_at_ms` is `None`.
#[derive(Debug, Clone)]
pub struct PlannedJob {
    pub job: SmsJob,
    pub rule_name: String,
    pub key: String,
    pub due_at_ms: Option<i64>,
    pub on_repeat: OnRepeat,
    pub cap: Option<Cap>,
}

/// Pending jobs of `rule_id` with correlation key `key` are to be cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    pub rule_id: String,
    pub rule_name: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRecipient {
    pub rule_id: String,
    pub rule_name: String,
    pub raw: String,
    pub reason: String,
}

/// Something the account should read about a rule's outcome that is neither a
/// failure nor an invalid recipient (recipients past a limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleNote {
    pub rule_id: String,
    pub rule_name: String,
    pub kind: &'static str,
    pub detail: String,
}

/// Report kind of recipients left out by a limit.
pub const RECIPIENTS_LIMITED: &str = "recipients_limited";

/// Bounds on what one event can produce, whatever its payload says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Recipients one rule sends one event to.
    pub recipients_per_rule: usize,
    /// SMS jobs one event produces over all its rules.
    pub jobs_per_event: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            recipients_per_rule: 10,
            jobs_per_event: 25,
        }
    }
}

/// What an event produced.
#[derive(Debug, Default)]
pub struct EventPlan {
    pub jobs: Vec<PlannedJob>,
    /// Recipients left out by the limits, per rule.
    pub notes: Vec<RuleNote>,
    pub cancellations: Vec<Cancellation>,
    pub failures: Vec<RuleFailure>,
    pub invalid_recipients: Vec<InvalidRecipient>,
    /// Rules whose condition was false.
    pub skipped: usize,
    /// Why no rule could read the event at all (its payload is not JSON); the
    /// rest of the plan is then empty.
    pub unreadable: Option<String>,
}

impl EventPlan {
    /// The plan of an event no rule can read: nothing but the reason.
    pub fn unreadable(error: &EventError) -> Self {
        Self {
            unreadable: Some(error.detail()),
            ..Self::default()
        }
    }
}

/// A rule's preview: `Ok(None)` when its condition is false.
pub struct RulePreview {
    pub rule_name: String,
    pub result: Result<Option<Evaluation>, RuleError>,
}

/// Why an event could not be evaluated at all.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("event payload is not valid JSON")]
    PayloadNotJson(#[source] serde_json::Error),
}

impl EventError {
    /// The error with its cause, as the account reads it in the event's report.
    pub fn detail(&self) -> String {
        match self {
            Self::PayloadNotJson(cause) => format!("{self}: {cause}"),
        }
    }
}

/// Compiles rules once per version and evaluates events against them.
#[derive(Clone)]
pub struct Engine {
    compiled: Cache<(String, i64), Arc<Result<CompiledRule, CompileError>>>,
    limits: Limits,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Self {
        Self {
            compiled: Cache::new(10_000),
            limits: Limits {
                recipients_per_rule: limits.recipients_per_rule.max(1),
                jobs_per_event: limits.jobs_per_event.max(1),
            },
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn compiled_rule(&self, rule: &Rule) -> Arc<Result<CompiledRule, CompileError>> {
        self.compiled
            .get_with((rule.id.clone(), rule.updated_at_ms), || {
                Arc::new(CompiledRule::compile(rule))
            })
    }

    fn enabled_rules<'r>(
        &self,
        rules: &'r [Rule],
    ) -> Vec<(&'r Rule, Arc<Result<CompiledRule, CompileError>>)> {
        rules
            .iter()
            .filter(|rule| rule.enabled)
            .map(|rule| (rule, self.compiled_rule(rule)))
            .collect()
    }

    /// Evaluates every enabled rule of `source` against `event`, and the account's
    /// cancel clauses.
    pub fn plan(
        &self,
        event: &EventEnvelope,
        source: &ResolvedSource,
        now_ms: i64,
    ) -> Result<EventPlan, EventError> {
        let cancel_rules = self.enabled_rules(&source.cancel_rules);
        let rules = self.enabled_rules(&source.rules);
        let mut reads = condition::VariableReads::default();
        let mut payload_reads = condition::Reads::Nothing;
        for (_, compiled) in cancel_rules.iter().chain(&rules) {
            if let Ok(compiled) = compiled.as_ref() {
                compiled.add_reads(&mut reads);
                compiled.add_payload_reads(&mut payload_reads);
            }
        }
        let inputs = EventInputs::new(event, source, now_ms, self.limits, &reads, &payload_reads)?;
        let mut plan = EventPlan::default();
        for (rule, compiled) in cancel_rules {
            let Ok(compiled) = compiled.as_ref() else {
                // Reported when the rule's own trigger fires.
                continue;
            };
            match compiled.cancellation_key(&inputs) {
                Ok(Some(key)) => plan.cancellations.push(Cancellation {
                    rule_id: rule.id.clone(),
                    rule_name: rule.name.clone(),
                    key,
                }),
                Ok(None) => {}
                Err(error) => plan.failures.push(RuleFailure {
                    rule_id: rule.id.clone(),
                    rule_name: rule.name.clone(),
                    error,
                }),
            }
        }
        for (rule, compiled) in rules {
            let compiled = match compiled.as_ref() {
                Ok(compiled) => compiled,
                Err(error) => {
                    plan.failures.push(RuleFailure {
                        rule_id: rule.id.clone(),
                        rule_name: rule.name.clone(),
                        error: RuleError::Compile(error.clone()),
                    });
                    continue;
                }
            };
            match compiled.evaluate(&inputs) {
                Ok(None) => plan.skipped += 1,
                Ok(Some(evaluation)) => add_jobs(
                    &mut plan,
                    event,
                    rule,
                    compiled,
                    evaluation,
                    now_ms,
                    self.limits,
                ),
                Err(error) => plan.failures.push(RuleFailure {
                    rule_id: rule.id.clone(),
                    rule_name: rule.name.clone(),
                    error,
                }),
            }
        }
        Ok(plan)
    }

    /// Renders the rules of `source` (or only `rule_name`) against `event` without
    /// producing jobs, keeping every detail for the user.
    pub fn preview(
        &self,
        event: &EventEnvelope,
        source: &ResolvedSource,
        rule_name: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<RulePreview>, EventError> {
        let everything = condition::VariableReads::everything();
        let inputs = EventInputs::new(
            event,
            source,
            now_ms,
            self.limits,
            &everything,
            &everything.event,
        )?;
        Ok(source
            .rules
            .iter()
            .filter(|rule| rule_name.is_none_or(|name| rule.name == name))
            .map(|rule| RulePreview {
                rule_name: rule.name.clone(),
                result: CompiledRule::compile(rule)
                    .map_err(RuleError::from)
                    .and_then(|compiled| compiled.evaluate(&inputs)),
            })
            .collect())
    }
}

fn add_jobs(
    plan: &mut EventPlan,
    event: &EventEnvelope,
    rule: &Rule,
    compiled: &CompiledRule,
    evaluation: Evaluation,
    now_ms: i64,
    limits: Limits,
) {
    let mut over_limit = evaluation.recipients_over_limit;
    let priority = if rule.priority == Priority::Unspecified as i32 {
        Priority::Transactional as i32
    } else {
        rule.priority
    };
    for recipient in evaluation.recipients {
        let to = match recipient.e164 {
            Ok(e164) => e164,
            Err(reason) => {
                plan.invalid_recipients.push(InvalidRecipient {
                    rule_id: rule.id.clone(),
                    rule_name: rule.name.clone(),
                    raw: recipient.raw,
                    reason,
                });
                continue;
            }
        };
        if plan.jobs.len() >= limits.jobs_per_event {
            over_limit += 1;
            continue;
        }
        plan.jobs.push(PlannedJob {
            job: SmsJob {
                job_id: foco_bus::job_id(&event.event_id, &rule.id, &to),
                account_id: event.account_id.clone(),
                event_id: event.event_id.clone(),
                source_id: event.source_id.clone(),
                rule_id: rule.id.clone(),
                to,
                body: evaluation.body.clone(),
                provider: rule.provider.clone(),
                from: rule.from.clone(),
                priority,
                created_at_ms: now_ms,
                encoding: evaluation.segments.encoding.as_str().to_owned(),
                segments: evaluation.segments.segments as u32,
                due_at_ms: evaluation.due_at_ms.unwrap_or(0),
                expires_at_ms: evaluation.expires_at_ms,
                metadata: Default::default(),
            },
            rule_name: rule.name.clone(),
            key: evaluation.key.clone(),
            due_at_ms: evaluation.due_at_ms,
            on_repeat: compiled.on_repeat,
            cap: compiled.cap,
        });
    }
    if over_limit > 0 {
        plan.notes.push(RuleNote {
            rule_id: rule.id.clone(),
            rule_name: rule.name.clone(),
            kind: RECIPIENTS_LIMITED,
            detail: format!(
                "{over_limit} more recipient(s) not sent: at most {} per rule and {} per event",
                limits.recipients_per_rule, limits.jobs_per_event
            ),
        });
    }
}

/// Checks a rule the way the engine will run it; what control calls on save.
pub fn validate_rule(rule: &Rule) -> Result<(), CompileError> {
    CompiledRule::compile(rule).map(|_| ())
}

/// Warnings about what a rule will cost: literal text in its body that forces
/// UCS-2 while the rule keeps Unicode.
pub fn rule_warnings(rule: &Rule) -> Vec<String> {
    body_warnings(&rule.body, &rule.encoding)
}

/// Warnings about what a body template with `encoding` will cost (a rule's,
/// or a message template's).
pub fn body_warnings(body: &str, encoding: &str) -> Vec<String> {
    if encoding.trim() == "gsm7" {
        return Vec::new();
    }
    let literal = template::literal_text(body);
    let characters = encoding::non_gsm7_characters(&literal);
    if characters.is_empty() {
        return Vec::new();
    }
    let list: Vec<String> = characters.iter().map(|c| format!("'{c}'")).collect();
    vec![format!(
        "body contains {} which force{} UCS-2 (70 characters per segment instead of 160); use encoding: gsm7 to transliterate",
        list.join(", "),
        if characters.len() == 1 { "s" } else { "" }
    )]
}

/// The event as conditions and templates see it, converted once per event.
pub struct EventInputs {
    pub(crate) cel_context: cel::Context<'static, 'static>,
    /// What templates see: a view converting what a template reads, when it
    /// reads it.
    template_context: minijinja::Value,
    pub(crate) default_country: String,
    pub(crate) timezone: chrono_tz::Tz,
    pub(crate) received_at_ms: i64,
    /// The account's default validity, for rules without their own.
    pub(crate) account_valid_for: std::time::Duration,
    pub(crate) max_recipients_per_rule: usize,
    /// What `template_context` views.
    context: Arc<serde_json::Value>,
    /// The longest list in the payload, once a condition that iterates asked.
    longest_list: std::cell::OnceCell<usize>,
}

impl EventInputs {
    pub(crate) fn template_context(&self) -> minijinja::Value {
        self.template_context.clone()
    }

    /// The longest list anywhere in the payload: it bounds what a condition that
    /// iterates costs. Found on first use, since walking a large payload is not
    /// free and most conditions do not iterate.
    pub(crate) fn longest_list(&self) -> usize {
        *self
            .longest_list
            .get_or_init(|| condition::longest_list(&self.context["event"]))
    }

    fn new(
        event: &EventEnvelope,
        source: &ResolvedSource,
        now_ms: i64,
        limits: Limits,
        reads: &condition::VariableReads,
        payload_reads: &condition::Reads,
    ) -> Result<Self, EventError> {
        let payload =
            payload::parse(&event.payload, payload_reads).map_err(EventError::PayloadNotJson)?;
        let headers: serde_json::Map<String, serde_json::Value> = event
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.clone().into()))
            .collect();
        let fallback_account;
        let account = match &source.account {
            Some(account) => account,
            None => {
                fallback_account = Account::default();
                &fallback_account
            }
        };
        let source_name = source
            .source
            .as_ref()
            .map(|source| source.name.as_str())
            .unwrap_or("");
        let timezone = account.timezone.parse().unwrap_or(chrono_tz::UTC);
        // Assembled from values: `json!` would copy the payload once more,
        // through its serializer.
        let context = Arc::new(serde_json::Value::Object(serde_json::Map::from_iter([
            ("event".to_owned(), payload),
            ("event_type".to_owned(), event.event_type.clone().into()),
            ("event_id".to_owned(), event.event_id.clone().into()),
            ("headers".to_owned(), headers.into()),
            (
                "source".to_owned(),
                serde_json::json!({ "name": source_name }),
            ),
            (
                "account".to_owned(),
                serde_json::json!({
                    "name": account.name,
                    "timezone": account.timezone,
                    "default_country": account.default_country,
                }),
            ),
        ])));
        Ok(Self {
            cel_context: condition::event_context(
                reads.event.to_cel(&context["event"]),
                reads.headers.to_cel(&context["headers"]),
                &event.event_type,
            ),
            template_context: json_view::JsonView::value(Arc::clone(&context)),
            default_country: account.default_country.clone(),
            timezone,
            received_at_ms: if event.received_at_ms > 0 {
                event.received_at_ms
            } else {
                now_ms
            },
            account_valid_for: timing::valid_for_or_default(None, &account.default_valid_for),
            max_recipients_per_rule: limits.recipients_per_rule,
            context,
            longest_list: std::cell::OnceCell::new(),
        })
    }
}

#[cfg(test)]
mod tests;
