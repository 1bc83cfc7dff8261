//! CEL conditions. Variables: `event` (the JSON payload), `event_type`, `headers`.
//!
//! Expressions are checked for size and nesting before they reach the parser:
//! deeply nested input can exhaust the parser's stack (in debug builds well
//! before the parser's own recursion limit). Evaluation cost is bounded by the
//! payload: CEL has no loops beyond its comprehension macros over payload lists,
//! and ingress bounds the payload size.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};

use super::EventInputs;

/// CEL's standard library, built once: building it registers a few hundred
/// overloads, far more work than evaluating a typical condition.
static STANDARD_LIBRARY: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// What of a JSON variable (`event`, `headers`) some conditions read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Reads {
    /// Not mentioned.
    #[default]
    Nothing,
    /// Only these top-level fields, each as `variable.field`.
    Fields(BTreeSet<String>),
    /// Used otherwise (indexed, iterated, passed whole): all of it.
    Everything,
}

impl Reads {
    pub(crate) fn add_field(&mut self, field: &str) {
        match self {
            Self::Nothing => *self = Self::Fields(BTreeSet::from([field.to_owned()])),
            Self::Fields(fields) => {
                fields.insert(field.to_owned());
            }
            Self::Everything => {}
        }
    }

    pub(crate) fn merge(&mut self, other: &Reads) {
        match other {
            Self::Nothing => {}
            Self::Everything => *self = Self::Everything,
            Self::Fields(fields) => fields.iter().for_each(|field| self.add_field(field)),
        }
    }

    /// `value` as CEL sees it, converting only what is read: an event's payload
    /// is converted once per event, and most conditions read a field or two.
    pub(crate) fn to_cel(&self, value: &serde_json::Value) -> cel::Value {
        let convert = |value| cel::to_value(value).unwrap_or(cel::Value::Null);
        match (self, value) {
            (Self::Nothing, _) => {
                cel::Value::Map(HashMap::<cel::objects::Key, cel::Value>::new().into())
            }
            (Self::Fields(fields), serde_json::Value::Object(object)) => cel::Value::Map(
                fields
                    .iter()
                    .filter_map(|field| {
                        let value = object.get(field)?;
                        Some((
                            cel::objects::Key::String(Arc::new(field.clone())),
                            convert(value),
                        ))
                    })
                    .collect::<HashMap<_, _>>()
                    .into(),
            ),
            _ => convert(value),
        }
    }
}

/// What conditions read of the event's JSON variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct VariableReads {
    pub event: Reads,
    pub headers: Reads,
}

impl VariableReads {
    pub(crate) fn everything() -> Self {
        Self {
            event: Reads::Everything,
            headers: Reads::Everything,
        }
    }

    pub(crate) fn merge(&mut self, other: &VariableReads) {
        self.event.merge(&other.event);
        self.headers.merge(&other.headers);
    }

    fn of(&mut self, name: &str) -> Option<&mut Reads> {
        match name {
            "event" => Some(&mut self.event),
            "headers" => Some(&mut self.headers),
            _ => None,
        }
    }

    /// Adds what `expression` reads. A comprehension variable that shadows
    /// `event` or `headers` only widens what is converted, never narrows it.
    fn collect(&mut self, expression: &cel::common::ast::IdedExpr) {
        use cel::common::ast::Expr;
        match &expression.expr {
            Expr::Select(select) => match &select.operand.expr {
                Expr::Ident(name) => {
                    if let Some(reads) = self.of(name) {
                        reads.add_field(&select.field);
                    }
                }
                _ => self.collect(&select.operand),
            },
            Expr::Ident(name) => {
                if let Some(reads) = self.of(name) {
                    *reads = Reads::Everything;
                }
            }
            Expr::Call(call) => {
                call.target.iter().for_each(|target| self.collect(target));
                call.args.iter().for_each(|argument| self.collect(argument));
            }
            Expr::Comprehension(comprehension) => {
                for part in [
                    &comprehension.iter_range,
                    &comprehension.accu_init,
                    &comprehension.loop_cond,
                    &comprehension.loop_step,
                    &comprehension.result,
                ] {
                    self.collect(part);
                }
            }
            Expr::List(list) => list
                .elements
                .iter()
                .for_each(|element| self.collect(element)),
            Expr::Map(map) => self.collect_entries(&map.entries),
            Expr::Struct(structure) => self.collect_entries(&structure.entries),
            Expr::Unspecified | Expr::Literal(_) => {}
        }
    }

    fn collect_entries(&mut self, entries: &[cel::common::ast::IdedEntryExpr]) {
        use cel::common::ast::EntryExpr;
        for entry in entries {
            match &entry.expr {
                EntryExpr::MapEntry(entry) => {
                    self.collect(&entry.key);
                    self.collect(&entry.value);
                }
                EntryExpr::StructField(field) => self.collect(&field.value),
            }
        }
    }
}

/// The variables conditions see for one event, bound once and shared by every
/// condition evaluated on it.
pub(crate) fn event_context(
    event: cel::Value,
    headers: cel::Value,
    event_type: &str,
) -> cel::Context<'static, 'static> {
    let mut context = cel::Context::with_env(STANDARD_LIBRARY.clone());
    context.add_variable_from_value("event", event);
    context.add_variable_from_value("headers", headers);
    context.add_variable_from_value(
        "event_type",
        cel::Value::String(Arc::new(event_type.to_owned())),
    );
    context
}

pub const MAX_CONDITION_CHARS: usize = 4096;
/// Deepest nesting of comprehension macros (`all`, `exists`, `exists_one`,
/// `map`, `filter`) run once per element of another: each level multiplies the
/// work by a list's length.
pub const MAX_COMPREHENSION_NESTING: usize = 2;
/// Most steps one condition's comprehensions may take on one event: a
/// condition that iterates sees lists of at most this many elements, and one
/// that nests two comprehensions of at most its square root, so either costs at
/// most this many steps (a few milliseconds) on any payload.
pub const MAX_ITERATION_STEPS: usize = 4096;
/// Longest list a condition that iterates may see, by how deep its
/// comprehensions nest.
pub fn max_iterated_list(nesting: usize) -> usize {
    match nesting {
        0 => usize::MAX,
        1 => MAX_ITERATION_STEPS,
        _ => MAX_ITERATION_STEPS.isqrt(),
    }
}
/// Deepest nesting of parentheses, brackets and braces.
pub const MAX_CONDITION_DEPTH: usize = 24;

/// Conditions fail in terms of what the rule says and the types of the values it
/// met, never the values: the text reaches logs and the event's report, and a
/// payload holds customers' data and, at times, credentials.
#[derive(Debug, thiserror::Error)]
pub enum ConditionError {
    #[error("{0}")]
    Execution(String),
    #[error(
        "the payload has a list of {length} elements; a condition whose comprehensions nest {nesting} deep sees at most {}",
        max_iterated_list(*nesting)
    )]
    ListTooLong { length: usize, nesting: usize },
    #[error("condition returned a {0}, not a bool")]
    NotBool(String),
}

pub struct Condition {
    program: cel::Program,
    /// The expression as written: what an error may quote.
    source: String,
    /// Whether it runs a comprehension (its cost grows with the payload's lists).
    /// How deep its comprehensions nest (0: it does not iterate).
    nesting: usize,
    /// What it reads of `event` and `headers`.
    reads: VariableReads,
}

/// Checks and compiles `source`; the error gives the position ("line 1, column
/// 15: …") when the parser reports one.
pub fn validate_condition(source: &str) -> Result<(), String> {
    Condition::compile(source).map(|_| ())
}

fn nesting_depth(source: &str) -> usize {
    let mut depth: usize = 0;
    let mut deepest = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in source.chars() {
        if let Some(open) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == open => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// How deeply comprehensions run inside the per-element parts of others.
fn comprehension_nesting(expression: &cel::common::ast::IdedExpr) -> usize {
    use cel::common::ast::{EntryExpr, Expr};
    let deepest = |expressions: &mut dyn Iterator<Item = &cel::common::ast::IdedExpr>| {
        expressions.map(comprehension_nesting).max().unwrap_or(0)
    };
    match &expression.expr {
        Expr::Comprehension(comprehension) => {
            // The range and the initial value are evaluated once; the condition,
            // the step and the result once per element.
            let once =
                deepest(&mut [&comprehension.iter_range, &comprehension.accu_init].into_iter());
            let per_element = deepest(
                &mut [
                    &comprehension.loop_cond,
                    &comprehension.loop_step,
                    &comprehension.result,
                ]
                .into_iter(),
            );
            once.max(per_element + 1)
        }
        Expr::Call(call) => {
            deepest(&mut call.target.iter().map(|target| &**target).chain(&call.args))
        }
        Expr::Select(select) => comprehension_nesting(&select.operand),
        Expr::List(list) => deepest(&mut list.elements.iter()),
        Expr::Map(map) => deepest(&mut map.entries.iter().flat_map(|entry| match &entry.expr {
            EntryExpr::MapEntry(entry) => vec![&entry.key, &entry.value],
            EntryExpr::StructField(field) => vec![&field.value],
        })),
        Expr::Struct(structure) => {
            deepest(
                &mut structure
                    .entries
                    .iter()
                    .flat_map(|entry| match &entry.expr {
                        EntryExpr::MapEntry(entry) => vec![&entry.key, &entry.value],
                        EntryExpr::StructField(field) => vec![&field.value],
                    }),
            )
        }
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => 0,
    }
}

/// The longest list anywhere in `value`.
pub(crate) fn longest_list(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) => items
            .iter()
            .map(longest_list)
            .max()
            .unwrap_or(0)
            .max(items.len()),
        serde_json::Value::Object(fields) => fields.values().map(longest_list).max().unwrap_or(0),
        _ => 0,
    }
}

impl Condition {
    pub fn compile(source: &str) -> Result<Self, String> {
        if source.len() > MAX_CONDITION_CHARS {
            return Err(format!("longer than {MAX_CONDITION_CHARS} characters"));
        }
        let depth = nesting_depth(source);
        if depth > MAX_CONDITION_DEPTH {
            return Err(format!(
                "nested {depth} levels deep; at most {MAX_CONDITION_DEPTH} are allowed"
            ));
        }
        let program = STANDARD_LIBRARY.compile(source).map_err(|errors| {
            errors
                .errors
                .iter()
                .map(|error| {
                    format!(
                        "line {}, column {}: {}",
                        error.pos.0, error.pos.1, error.msg
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        let nesting = comprehension_nesting(program.expression());
        if nesting > MAX_COMPREHENSION_NESTING {
            return Err(format!(
                "comprehensions (all, exists, exists_one, map, filter) nested {nesting} deep; at most {MAX_COMPREHENSION_NESTING} are allowed"
            ));
        }
        let mut reads = VariableReads::default();
        reads.collect(program.expression());
        Ok(Self {
            program,
            source: source.to_owned(),
            nesting,
            reads,
        })
    }

    pub(crate) fn reads(&self) -> &VariableReads {
        &self.reads
    }

    pub fn matches(&self, inputs: &EventInputs) -> Result<bool, ConditionError> {
        if self.nesting > 0 && inputs.longest_list() > max_iterated_list(self.nesting) {
            return Err(ConditionError::ListTooLong {
                length: inputs.longest_list(),
                nesting: self.nesting,
            });
        }
        match self.program.execute(&inputs.cel_context) {
            Ok(cel::Value::Bool(matched)) => Ok(matched),
            Ok(other) => Err(ConditionError::NotBool(other.type_of().to_string())),
            Err(error) => Err(ConditionError::Execution(execution_error_text(
                &error,
                &self.source,
            ))),
        }
    }
}

/// CEL's own messages print the values involved (`Unsupported binary operator
/// '+': String("..."), Int(1)`); these name the operator, function or key of the
/// condition and the types instead. A missing key is named only when the
/// condition spells it: a key computed from the payload is payload.
fn execution_error_text(error: &cel::ExecutionError, condition: &str) -> String {
    use cel::ExecutionError as Cel;
    match error {
        Cel::InvalidArgumentCount { .. }
        | Cel::UnexpectedType { .. }
        | Cel::NoSuchOverload(_)
        | Cel::UndeclaredReference(_)
        | Cel::MissingArgumentOrTarget => error.to_string(),
        Cel::NoSuchKey(key) if condition.contains(key.as_str()) => format!("no such key: {key}"),
        Cel::NoSuchKey(_) => "no such key (computed from the payload)".to_owned(),
        Cel::UnsupportedTargetType { target } => {
            format!("invalid argument type: {}", target.type_of())
        }
        Cel::NotSupportedAsMethod { method, target } => {
            format!(
                "method '{method}' is not supported on type {}",
                target.type_of()
            )
        }
        Cel::UnsupportedKeyType(key) => format!("type {} cannot be a map key", key.type_of()),
        Cel::ValuesNotComparable(left, right) => format!(
            "types {} and {} cannot be compared",
            left.type_of(),
            right.type_of()
        ),
        Cel::UnsupportedBinaryOperator(operator, left, right) => format!(
            "operator '{operator}' does not apply to types {} and {}",
            left.type_of(),
            right.type_of()
        ),
        Cel::UnsupportedIndex(index, target) => {
            format!(
                "type {} cannot index type {}",
                index.type_of(),
                target.type_of()
            )
        }
        Cel::FunctionError { function, .. } => format!("function '{function}' failed"),
        Cel::DivisionByZero(_) => "division by zero".to_owned(),
        Cel::RemainderByZero(_) => "remainder by zero".to_owned(),
        Cel::Overflow(operator, ..) => format!("overflow in '{operator}'"),
        Cel::IndexOutOfBounds(_) => "list index out of bounds".to_owned(),
        Cel::DuplicateKey(key) => format!("a key of type {} is repeated in a map", key.type_of()),
        // Internal errors and kinds this CEL no longer produces.
        _ => "the condition could not be evaluated".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comprehensions_nest_at_most_twice() {
        assert!(validate_condition("event.items.exists(i, i.tags.exists(t, t == 'vip'))").is_ok());
        assert!(
            validate_condition("event.a.map(x, x * 2).exists(y, y > 3)").is_ok(),
            "a range is evaluated once"
        );
        let error =
            validate_condition("event.a.all(x, event.a.all(y, event.a.all(z, x + y + z > 0)))")
                .unwrap_err();
        assert!(error.contains("nested 3 deep"), "{error}");
    }

    fn reads_of(source: &str) -> VariableReads {
        Condition::compile(source).unwrap().reads
    }

    fn fields(names: &[&str]) -> Reads {
        Reads::Fields(names.iter().map(|name| (*name).to_owned()).collect())
    }

    #[test]
    fn reads_name_the_fields_a_condition_selects() {
        let reads = reads_of(r#"event_type == "orders/create" && event.tenant == "t1""#);
        assert_eq!(reads.event, fields(&["tenant"]));
        assert_eq!(reads.headers, Reads::Nothing);
        let reads = reads_of(
            r#"has(event.customer) && event.customer.phone != "" && headers["x-topic"] == "a""#,
        );
        assert_eq!(reads.event, fields(&["customer"]));
        assert_eq!(reads.headers, Reads::Everything, "indexed: all of it");
        let reads = reads_of("event.items.exists(i, i.qty > event.min) || headers.source == 'x'");
        assert_eq!(reads.event, fields(&["items", "min"]));
        assert_eq!(reads.headers, fields(&["source"]));
        for whole in [
            "size(event) > 2",
            r#""tenant" in event"#,
            "[event].exists(e, e.tenant == 't1')",
            "event.exists(k, k == 'tenant')",
        ] {
            assert_eq!(reads_of(whole).event, Reads::Everything, "{whole}");
        }
        let mut merged = reads_of("event.a == 1");
        merged.merge(&reads_of("event.b == 2"));
        assert_eq!(merged.event, fields(&["a", "b"]));
        merged.merge(&reads_of("size(event) == 2"));
        assert_eq!(merged.event, Reads::Everything);
    }

    /// A condition sees the same values, and fails the same way, whether the
    /// payload was converted whole or only as far as it reads.
    #[test]
    fn converting_what_is_read_answers_as_converting_everything() {
        let payload = serde_json::json!({
            "tenant": "t1",
            "total": 404.95,
            "count": 3,
            "customer": {"phone": "+5255", "tags": ["vip"]},
            "items": [{"qty": 2}, {"qty": 5}],
            "note": "x".repeat(900),
        });
        let headers = serde_json::json!({"x-topic": "orders/create", "source": "shop"});
        let conditions = [
            r#"event.tenant == "t1" && event.count > 2"#,
            "double(event.total) >= 400.0",
            "has(event.customer.tags) && 'vip' in event.customer.tags",
            "has(event.missing)",
            "event.missing == 1",
            "event.items.exists(i, i.qty > 4)",
            "event.items.all(i, i.qty > event.count)",
            r#"headers.source == "shop" && headers["x-topic"] == "orders/create""#,
            "size(event) == 6",
            "event.tenant + 1 == 2",
        ];
        let everything = VariableReads::everything();
        for source in conditions {
            let condition = Condition::compile(source).unwrap();
            let evaluate = |reads: &VariableReads| {
                let context = event_context(
                    reads.event.to_cel(&payload),
                    reads.headers.to_cel(&headers),
                    "orders/create",
                );
                match condition.program.execute(&context) {
                    Ok(value) => format!("{value:?}"),
                    Err(error) => execution_error_text(&error, source),
                }
            };
            assert_eq!(
                evaluate(&condition.reads),
                evaluate(&everything),
                "{source}"
            );
        }
    }

    #[test]
    fn longest_list_looks_everywhere() {
        let payload = serde_json::json!({"a": [1, 2], "b": {"c": [[1, 2, 3, 4], 5]}});
        assert_eq!(longest_list(&payload), 4);
    }

    #[test]
    fn errors_carry_positions() {
        let error = validate_condition("event_type ==").unwrap_err();
        assert!(error.starts_with("line 1, column"), "{error}");
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("{}true{}", "(".repeat(5000), ")".repeat(5000));
        let error = validate_condition(&deep).unwrap_err();
        assert!(
            error.contains("longer than") || error.contains("nested"),
            "{error}"
        );
        let deep = format!("{}true{}", "(".repeat(100), ")".repeat(100));
        assert!(
            validate_condition(&deep)
                .unwrap_err()
                .contains("nested 100 levels")
        );
        assert!(validate_condition(r#"event.a == "((((((((((((((((((((((((((((((""#).is_ok());
    }
}
