//! Which service owns each table of the schema that control's migrations
//! create: the owner writes it, the others read it. The map is checked by a
//! test against the migrations (every table has one owner) and against every
//! service's SQL (no service writes a table it does not own, except the
//! writes listed in [`SHARED_WRITES`], each with its reason).
//!
//! A new table gets its owner here in the change that creates it; a new
//! write to another service's table goes through the owner (its API, or the
//! bus), or is added to [`SHARED_WRITES`] with the reason it cannot.

/// The services that talk to Postgres.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    Control,
    Rules,
    Sender,
}

impl Service {
    /// The service's folder under `services/`.
    pub fn folder(self) -> &'static str {
        match self {
            Self::Control => "control",
            Self::Rules => "rules",
            Self::Sender => "sender",
        }
    }
}

/// Every table and the service that writes it.
pub const OWNERS: &[(&str, Service)] = &[
    // Accounts and their configuration: written through the API only.
    ("accounts", Service::Control),
    ("api_keys", Service::Control),
    ("sources", Service::Control),
    ("rules", Service::Control),
    ("provider_routes", Service::Control),
    ("api_sends", Service::Control),
    ("message_templates", Service::Control),
    // Status webhooks: endpoints through the API, deliveries by the worker.
    ("endpoints", Service::Control),
    ("endpoint_deliveries", Service::Control),
    ("endpoint_attempts", Service::Control),
    // What events decided.
    ("seen_events", Service::Rules),
    ("cancel_marks", Service::Rules),
    ("recipient_sends", Service::Rules),
    ("event_reports", Service::Rules),
    ("event_samples", Service::Rules),
    ("scheduled_jobs", Service::Rules),
    // What became of each SMS.
    ("messages", Service::Sender),
    ("message_parts", Service::Sender),
    ("provider_message_ids", Service::Sender),
    ("held_jobs", Service::Sender),
    ("dead_letters", Service::Sender),
    ("opt_outs", Service::Sender),
    ("opt_out_keywords", Service::Sender),
    ("route_rate_windows", Service::Sender),
    ("route_pauses", Service::Sender),
];

/// Writes to a table by a service that does not own it: (table, writer, why).
/// Each is an operator's or an API caller's decision that must be durable when
/// the call answers, made while the owner may be down or scaled to zero; none
/// is on a hot path, and each is a single keyed statement the owner's own
/// writes tolerate (the owner re-reads the row before acting on it).
pub const SHARED_WRITES: &[(&str, Service, &str)] = &[
    (
        "scheduled_jobs",
        Service::Control,
        "SendMessage with a delay stores its job, and CancelMessage cancels a pending one; rules' scheduler publishes only rows still pending when due",
    ),
    (
        "messages",
        Service::Control,
        "an operator settles an unknown message (sent or failed); the sender changes only messages in its own states",
    ),
    (
        "provider_message_ids",
        Service::Control,
        "settling an unknown message as sent records the provider's id, so the receipts that follow find it",
    ),
    (
        "held_jobs",
        Service::Control,
        "CancelMessage removes a held job; the sender releases only rows that still exist",
    ),
    (
        "dead_letters",
        Service::Control,
        "retrying a dead letter marks it retried once its job is published again",
    ),
    (
        "opt_outs",
        Service::Control,
        "the API adds and removes opt-outs; the sender adds those that come by keyword",
    ),
];

/// The owner of `table`, if the map names it.
pub fn owner(table: &str) -> Option<Service> {
    OWNERS
        .iter()
        .find(|(name, _)| *name == table)
        .map(|(_, service)| *service)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    use super::{OWNERS, SHARED_WRITES, Service, owner};

    fn repository() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn files(folder: &Path, extension: &str, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, extension, found);
            } else if path.extension().is_some_and(|ext| ext == extension) {
                found.push(path);
            }
        }
    }

    /// The identifier after each occurrence of `keyword` (lower case) in `text`.
    fn names_after<'t>(text: &'t str, keyword: &str) -> Vec<&'t str> {
        let lower = text.to_lowercase();
        let mut names = Vec::new();
        let mut from = 0;
        while let Some(at) = lower[from..].find(keyword) {
            let start = from + at;
            from = start + keyword.len();
            let boundary = start == 0 || !lower.as_bytes()[start - 1].is_ascii_alphanumeric();
            if !boundary {
                continue;
            }
            let rest = text[from..].trim_start();
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            names.push(&rest[..end]);
        }
        names
    }

    fn created_tables() -> BTreeSet<String> {
        let mut migrations = Vec::new();
        files(
            &repository().join("services/control/migrations"),
            "sql",
            &mut migrations,
        );
        let mut tables = BTreeSet::new();
        for migration in migrations {
            let sql = std::fs::read_to_string(&migration).unwrap();
            for name in names_after(&sql, "create table ") {
                let name = if name.eq_ignore_ascii_case("if") {
                    // CREATE TABLE IF NOT EXISTS name
                    let after = &sql[sql.to_lowercase().find("not exists").unwrap() + 10..];
                    after.split_whitespace().next().unwrap()
                } else {
                    name
                };
                tables.insert(name.to_lowercase());
            }
            for name in names_after(&sql, "drop table ") {
                tables.remove(&name.to_lowercase());
            }
        }
        tables
    }

    #[test]
    fn every_table_has_exactly_one_owner() {
        let tables = created_tables();
        assert!(tables.contains("messages"), "migrations read: {tables:?}");
        let mut named = BTreeMap::new();
        for (table, service) in OWNERS {
            assert!(
                named.insert(*table, *service).is_none(),
                "{table} is owned twice"
            );
            assert!(
                tables.contains(*table),
                "{table} is in the map but no migration creates it"
            );
        }
        for table in &tables {
            assert!(
                owner(table).is_some(),
                "table {table} has no owner in services/control/src/tables.rs"
            );
        }
    }

    #[test]
    fn no_service_writes_a_table_it_does_not_own_unless_listed() {
        let tables = created_tables();
        let mut seen_shared = BTreeSet::new();
        for service in [Service::Control, Service::Rules, Service::Sender] {
            let mut sources = Vec::new();
            files(
                &repository()
                    .join("services")
                    .join(service.folder())
                    .join("src"),
                "rs",
                &mut sources,
            );
            for source in sources {
                let code = std::fs::read_to_string(&source).unwrap();
                for keyword in ["insert into ", "update ", "delete from "] {
                    for table in names_after(&code, keyword) {
                        let table = table.to_lowercase();
                        if !tables.contains(&table) || owner(&table) == Some(service) {
                            continue;
                        }
                        let listed = SHARED_WRITES
                            .iter()
                            .any(|(name, writer, _)| *name == table && *writer == service);
                        assert!(
                            listed,
                            "{} writes {table} ({}), which {:?} owns: go through the owner, or list it in SHARED_WRITES with the reason",
                            service.folder(),
                            source.display(),
                            owner(&table).unwrap()
                        );
                        seen_shared.insert((table, service));
                    }
                }
            }
        }
        for (table, writer, _) in SHARED_WRITES {
            assert!(
                seen_shared.contains(&(table.to_string(), *writer)),
                "SHARED_WRITES lists {writer:?} writing {table}, which it no longer does: remove the entry"
            );
        }
    }
}
