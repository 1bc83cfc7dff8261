//! Output helpers: aligned tables for people, JSON for scripts, RFC 3339 times.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

/// Unix milliseconds as RFC 3339 (UTC); 0 (unset) is `None`.
pub fn rfc3339(millis: i64) -> Option<String> {
    if millis == 0 {
        return None;
    }
    DateTime::<Utc>::from_timestamp_millis(millis)
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Writes rows under a header, each column as wide as its widest cell.
pub fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: Vec<&str>| -> std::io::Result<()> {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if index + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&" ".repeat(width - cell.chars().count() + 2));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, header.to_vec())?;
    for row in rows {
        line(out, row.iter().map(String::as_str).collect())?;
    }
    Ok(())
}

pub fn json(out: &mut dyn Write, value: &serde_json::Value) -> Result<(), crate::CliError> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// A table's header and how an item becomes its row.
pub type Columns<'a, T> = (&'a [&'a str], fn(&T) -> Vec<String>);

/// `items` as a JSON array, or as a table with `header` and a row per item.
pub fn list<T>(
    items: &[T],
    format: OutputFormat,
    out: &mut dyn Write,
    to_json: fn(&T) -> serde_json::Value,
    (header, to_row): Columns<'_, T>,
) -> Result<(), crate::CliError> {
    match format {
        OutputFormat::Json => json(
            out,
            &serde_json::Value::Array(items.iter().map(to_json).collect()),
        ),
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = items.iter().map(to_row).collect();
            Ok(table(out, header, &rows)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), None);
        assert_eq!(
            rfc3339(1_700_000_000_123).unwrap(),
            "2023-11-14T22:13:20.123Z"
        );
    }

    #[test]
    fn tables_align() {
        let mut out = Vec::new();
        table(
            &mut out,
            &["NAME", "STATUS"],
            &[
                vec!["a".into(), "sent".into()],
                vec!["long-name".into(), "x".into()],
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NAME       STATUS\na          sent\nlong-name  x\n"
        );
    }
}
