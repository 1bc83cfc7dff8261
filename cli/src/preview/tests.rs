use std::path::Path;

use clap::Parser as _;
use foco_proto::v1::{PreviewRulesResponse, RecipientPreview, RulePreview};

use super::*;
use crate::args::Command;

fn args(line: &[&str]) -> PreviewArgs {
    let cli = crate::Cli::try_parse_from(line).unwrap();
    match cli.command {
        Command::Preview(args) => args,
        other => panic!("not a preview: {other:?}"),
    }
}

#[test]
fn headers_are_name_colon_value() {
    assert_eq!(
        parse_header("X-Shopify-Topic: orders/create").unwrap(),
        ("X-Shopify-Topic".to_owned(), "orders/create".to_owned())
    );
    assert_eq!(
        parse_header("X-Time:12:30").unwrap(),
        ("X-Time".to_owned(), "12:30".to_owned())
    );
    assert!(parse_header("X-Shopify-Topic orders/create").is_err());
    assert!(parse_header(": value").is_err());
    assert!(parse_header("Bad Name: value").is_err());

    let error = crate::Cli::try_parse_from([
        "foco",
        "preview",
        "--source",
        "shop",
        "--payload",
        "-",
        "-H",
        "nocolon",
    ])
    .unwrap_err()
    .to_string();
    assert!(error.contains("expected 'Name: value'"), "{error}");
}

#[test]
fn the_request_carries_rule_headers_and_event_type() {
    let parsed = args(&[
        "foco",
        "preview",
        "--source",
        "shop",
        "--rule",
        "abandoned-cart",
        "--payload",
        "checkout.json",
        "-H",
        "X-Shopify-Topic: checkouts/create",
        "-H",
        "Accept: a",
        "-H",
        "Accept: b",
        "--event-type",
        "checkouts/update",
        "-o",
        "json",
    ]);
    assert_eq!(parsed.format.output, OutputFormat::Json);
    let request = preview_request("tienda-ale", &parsed, "{}".to_owned());
    assert_eq!(request.account, "tienda-ale");
    assert_eq!(request.source, "shop");
    assert_eq!(request.rule, "abandoned-cart");
    assert_eq!(request.payload, "{}");
    assert_eq!(request.event_type, "checkouts/update");
    assert_eq!(request.headers["X-Shopify-Topic"], "checkouts/create");
    assert_eq!(request.headers["Accept"], "a, b", "repeated headers fold");

    let all_rules = args(&["foco", "preview", "--source", "shop", "--payload", "-"]);
    let request = preview_request("tienda-ale", &all_rules, "{}".to_owned());
    assert_eq!(
        (request.rule.as_str(), request.event_type.as_str()),
        ("", "")
    );
    assert!(crate::Cli::try_parse_from(["foco", "preview", "--source", "shop"]).is_err());
}

#[test]
fn payloads_come_from_a_file_or_stdin_and_must_be_json() {
    let mut stdin = r#"{"token": "abc"}"#.as_bytes();
    assert_eq!(
        read_payload(Path::new("-"), &mut stdin).unwrap(),
        r#"{"token": "abc"}"#
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("order.json");
    std::fs::write(&file, "{\"total\": 1,\n  oops}").unwrap();
    let error = read_payload(&file, &mut "".as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!("payload {}: not JSON: ", file.display())),
        "{error}"
    );
    assert!(error.contains("line 2"), "{error}");

    let missing = dir.path().join("missing.json");
    let error = read_payload(&missing, &mut "".as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!("payload {}: cannot read: ", missing.display())),
        "{error}"
    );
}

fn sample_response() -> PreviewRulesResponse {
    PreviewRulesResponse {
        event_type: "checkouts/create".to_owned(),
        rules: vec![
            RulePreview {
                rule: "abandoned-cart".to_owned(),
                matched: true,
                recipients: vec![
                    RecipientPreview {
                        raw: "55 1234 5678".to_owned(),
                        e164: "+525512345678".to_owned(),
                        error: String::new(),
                    },
                    RecipientPreview {
                        raw: "+525512345678".to_owned(),
                        e164: "+525512345678".to_owned(),
                        error: String::new(),
                    },
                    RecipientPreview {
                        raw: "12".to_owned(),
                        e164: String::new(),
                        error: "not a phone number".to_owned(),
                    },
                ],
                body: "Hola Ale, tu carrito te espera.\nÚltimo día".to_owned(),
                encoding: "UCS-2".to_owned(),
                segments: 1,
                characters: 42,
                ucs2_characters: vec!["Ú".to_owned(), "í".to_owned()],
                send_at_ms: 1_700_000_000_000,
                key: "tok-123".to_owned(),
                error: String::new(),
            },
            RulePreview {
                rule: "owner-alert".to_owned(),
                ..RulePreview::default()
            },
            RulePreview {
                rule: "thanks".to_owned(),
                error: "body: undefined value `event.customer` (line 1)".to_owned(),
                ..RulePreview::default()
            },
        ],
    }
}

#[test]
fn the_table_shows_each_rule_outcome() {
    let mut out = Vec::new();
    print_preview(
        &sample_response(),
        DisplayZone::named("America/Mexico_City"),
        OutputFormat::Table,
        &mut out,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "\
event type: checkouts/create

rule abandoned-cart: matched
  to        55 1234 5678 → +525512345678
            +525512345678
            12 → invalid: not a phone number
  text      Hola Ale, tu carrito te espera.
            Último día
  encoding  UCS-2, 1 segment, 42 characters
            UCS-2 because of: Ú í (encoding: gsm7 transliterates them)
  send at   2023-11-14T16:13:20-06:00 (America/Mexico_City)
  key       tok-123

rule owner-alert: not matched

rule thanks: error: body: undefined value `event.customer` (line 1)
"
    );
}

#[test]
fn json_keeps_every_field() {
    let mut out = Vec::new();
    print_preview(
        &sample_response(),
        DisplayZone::UTC,
        OutputFormat::Json,
        &mut out,
    )
    .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(value["event_type"], "checkouts/create");
    assert_eq!(value["timezone"], "UTC");
    let cart = &value["rules"][0];
    assert_eq!(cart["matched"], true);
    assert_eq!(cart["recipients"][0]["e164"], "+525512345678");
    assert_eq!(cart["recipients"][2]["error"], "not a phone number");
    assert_eq!(cart["segments"], 1);
    assert_eq!(cart["ucs2_characters"], serde_json::json!(["Ú", "í"]));
    assert_eq!(cart["send_at"], "2023-11-14T22:13:20Z");
    assert_eq!(cart["key"], "tok-123");
    assert_eq!(value["rules"][1]["send_at"], serde_json::Value::Null);
    assert!(
        value["rules"][2]["error"]
            .as_str()
            .unwrap()
            .contains("undefined")
    );
}
