//! `foco templates`: the account's message templates (list, get, upsert,
//! delete, preview). A template is a body `foco send --template NAME --var
//! k=v` renders; `foco apply` also keeps them (`templates:` in the file).
//! Control checks every body (line and column of an error) and renders it.
//!
//! With an account key `--account` may be left out; the admin key needs it.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use foco_control_client::MessagingApi;
use foco_proto::v1::{
    DeleteTemplateRequest, GetTemplateRequest, ListTemplatesRequest, PreviewTemplateRequest,
    PreviewTemplateResponse, Template, UpsertTemplateRequest,
};
use serde_json::json;

use crate::CliError;
use crate::args::FormatArg;
use crate::messaging::{EncodingArg, encoding_name, parse_key_value};
use crate::output::{self, OutputFormat, rfc3339};

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// The account's templates.
    List(FormatArg),
    /// One template: its body, encoding and the variables it reads.
    Get {
        name: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Create or replace a template (checked by control: a mistake names its line and column).
    #[command(visible_alias = "apply")]
    Upsert {
        name: String,
        /// The body, a minijinja template over the variables (`{{ code }}`).
        #[arg(
            long,
            required_unless_present = "body_file",
            conflicts_with = "body_file"
        )]
        body: Option<String>,
        /// Read the body from this file (`-`: standard input).
        #[arg(long, value_name = "FILE|-")]
        body_file: Option<PathBuf>,
        #[arg(long, value_enum)]
        encoding: Option<EncodingArg>,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Delete a template (messages already sent with it keep their text).
    Delete {
        name: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Render a stored template (NAME) or --body with --var: the text, its encoding and segments.
    Preview {
        #[arg(required_unless_present = "body", conflicts_with = "body")]
        name: Option<String>,
        #[arg(long)]
        body: Option<String>,
        /// A variable, e.g. `--var code=4821` (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_key_value)]
        variables: Vec<(String, String)>,
        #[arg(long, value_enum)]
        encoding: Option<EncodingArg>,
        #[command(flatten)]
        format: FormatArg,
    },
}

pub fn upsert_request(
    account: &str,
    name: &str,
    body: String,
    encoding: Option<EncodingArg>,
) -> UpsertTemplateRequest {
    UpsertTemplateRequest {
        account: account.to_owned(),
        name: name.to_owned(),
        body,
        encoding: encoding_name(encoding),
    }
}

pub fn preview_request(
    account: &str,
    name: Option<&str>,
    body: Option<&str>,
    variables: &[(String, String)],
    encoding: Option<EncodingArg>,
) -> PreviewTemplateRequest {
    PreviewTemplateRequest {
        account: account.to_owned(),
        name: name.unwrap_or_default().to_owned(),
        body: body.unwrap_or_default().to_owned(),
        encoding: encoding_name(encoding),
        variables: variables.iter().cloned().collect::<HashMap<_, _>>(),
    }
}

pub async fn run(
    api: &mut MessagingApi,
    account: &str,
    command: &TemplatesCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        TemplatesCommand::List(format) => {
            let listed = api
                .list_templates(ListTemplatesRequest {
                    account: account.to_owned(),
                })
                .await
                .map_err(|status| CliError::api("list templates", status))?
                .into_inner();
            let header = ["NAME", "ENCODING", "VARIABLES", "UPDATED"];
            output::list(
                &listed.templates,
                format.output,
                out,
                template_json,
                (&header, template_row),
            )
        }
        TemplatesCommand::Get { name, format } => {
            let template = api
                .get_template(GetTemplateRequest {
                    account: account.to_owned(),
                    name: name.clone(),
                })
                .await
                .map_err(|status| CliError::api(format!("get template {name:?}"), status))?
                .into_inner();
            print_template(&template, format.output, out)
        }
        TemplatesCommand::Upsert {
            name,
            body,
            body_file,
            encoding,
            format,
        } => {
            let body = match (body, body_file) {
                (Some(body), _) => body.clone(),
                (None, Some(file)) => read_body(file)?,
                (None, None) => String::new(),
            };
            let template = api
                .upsert_template(upsert_request(account, name, body, *encoding))
                .await
                .map_err(|status| CliError::api(format!("save template {name:?}"), status))?
                .into_inner();
            print_template(&template, format.output, out)
        }
        TemplatesCommand::Delete { name, format } => {
            let deleted = api
                .delete_template(DeleteTemplateRequest {
                    account: account.to_owned(),
                    name: name.clone(),
                })
                .await
                .map_err(|status| CliError::api(format!("delete template {name:?}"), status))?
                .into_inner()
                .deleted;
            match format.output {
                OutputFormat::Json => output::json(out, &json!({ "deleted": deleted })),
                OutputFormat::Table if deleted => Ok(writeln!(out, "template {name} deleted")?),
                OutputFormat::Table => Ok(writeln!(out, "no template {name}")?),
            }
        }
        TemplatesCommand::Preview {
            name,
            body,
            variables,
            encoding,
            format,
        } => {
            let preview = api
                .preview_template(preview_request(
                    account,
                    name.as_deref(),
                    body.as_deref(),
                    variables,
                    *encoding,
                ))
                .await
                .map_err(|status| CliError::api("preview template", status))?
                .into_inner();
            print_preview(&preview, format.output, out)
        }
    }
}

fn print_preview(
    preview: &PreviewTemplateResponse,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match format {
        OutputFormat::Json => output::json(
            out,
            &json!({
                "text": preview.text,
                "encoding": preview.encoding,
                "segments": preview.segments,
                "characters": preview.characters,
                "ucs2_characters": preview.ucs2_characters,
            }),
        ),
        OutputFormat::Table => {
            writeln!(out, "{}", preview.text)?;
            writeln!(
                out,
                "-- {} characters, {}, {} segment(s)",
                preview.characters, preview.encoding, preview.segments
            )?;
            Ok(())
        }
    }
}

/// A body from a file, or from standard input for `-`.
fn read_body(path: &std::path::Path) -> Result<String, CliError> {
    let read = if path == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    read.map_err(|error| CliError::Input {
        what: format!("body {}", path.display()),
        message: format!("cannot read: {error}"),
    })
}

fn template_json(template: &Template) -> serde_json::Value {
    json!({
        "id": template.id,
        "name": template.name,
        "body": template.body,
        "encoding": if template.encoding.is_empty() { "unicode" } else { template.encoding.as_str() },
        "variables": template.variables,
        "warnings": template.warnings,
        "created_at": rfc3339(template.created_at_ms),
        "updated_at": rfc3339(template.updated_at_ms),
    })
}

fn template_row(template: &Template) -> Vec<String> {
    vec![
        template.name.clone(),
        if template.encoding.is_empty() {
            "unicode".to_owned()
        } else {
            template.encoding.clone()
        },
        template.variables.join(","),
        rfc3339(template.updated_at_ms).unwrap_or_default(),
    ]
}

fn print_template(
    template: &Template,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match format {
        OutputFormat::Json => output::json(out, &template_json(template)),
        OutputFormat::Table => {
            let row = template_row(template);
            writeln!(out, "template {} ({})", template.name, row[1])?;
            writeln!(out, "variables: {}", row[2])?;
            for warning in &template.warnings {
                writeln!(out, "warning: {warning}")?;
            }
            writeln!(out, "{}", template.body)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::Cli;
    use crate::args::Command;

    fn parse(line: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(line).map(|cli| cli.command)
    }

    #[test]
    fn upsert_takes_a_body_or_a_file_and_apply_is_its_alias() {
        let Command::Templates(TemplatesCommand::Upsert {
            name,
            body,
            encoding,
            ..
        }) = parse(&[
            "foco",
            "templates",
            "apply",
            "otp",
            "--body",
            "Tu código es {{ code }}",
            "--encoding",
            "gsm7",
        ])
        .unwrap()
        else {
            panic!("not an upsert");
        };
        let request = upsert_request("", &name, body.unwrap(), encoding);
        assert_eq!(request.name, "otp");
        assert_eq!(request.encoding, "gsm7");
        assert!(parse(&["foco", "templates", "upsert", "otp"]).is_err());
        assert!(
            parse(&[
                "foco",
                "templates",
                "upsert",
                "otp",
                "--body",
                "x",
                "--body-file",
                "b.txt"
            ])
            .is_err()
        );
    }

    #[test]
    fn preview_takes_a_name_or_a_body_and_variables() {
        let Command::Templates(TemplatesCommand::Preview {
            name,
            body,
            variables,
            encoding,
            format,
        }) = parse(&[
            "foco",
            "templates",
            "preview",
            "otp",
            "--var",
            "code=4821",
            "--var",
            "name=Ale",
            "-o",
            "json",
        ])
        .unwrap()
        else {
            panic!("not a preview");
        };
        assert_eq!(format.output, OutputFormat::Json);
        let request = preview_request(
            "tienda-ale",
            name.as_deref(),
            body.as_deref(),
            &variables,
            encoding,
        );
        assert_eq!(request.name, "otp");
        assert_eq!(request.variables["code"], "4821");
        assert_eq!(request.variables["name"], "Ale");
        assert!(parse(&["foco", "templates", "preview"]).is_err());
        assert!(parse(&["foco", "templates", "preview", "otp", "--body", "x"]).is_err());
        assert!(parse(&["foco", "templates", "preview", "otp", "--var", "code"]).is_err());
    }

    #[test]
    fn send_takes_a_template_and_its_variables_instead_of_a_body() {
        let Command::Send(args) = parse(&[
            "foco",
            "send",
            "--to",
            "+525512345678",
            "--template",
            "otp",
            "--var",
            "code=4821",
        ])
        .unwrap() else {
            panic!("not a send");
        };
        let request = crate::messaging::send_request("", &args);
        assert_eq!(request.template, "otp");
        assert_eq!(request.body, "");
        assert_eq!(request.variables["code"], "4821");
        assert!(parse(&["foco", "send", "--to", "+525512345678"]).is_err());
        assert!(
            parse(&[
                "foco",
                "send",
                "--to",
                "+52",
                "--body",
                "x",
                "--template",
                "otp"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "foco", "send", "--to", "+52", "--body", "x", "--var", "code=1"
            ])
            .is_err()
        );
    }
}
