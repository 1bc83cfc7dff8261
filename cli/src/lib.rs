//! The `foco` command line: applies configuration files to the control API and
//! lists sources, rules, messages and accounts. It is a thin client: every check
//! that matters (names, CEL conditions, templates, provider settings) is made by
//! control; the CLI adds what only a file can have (locations, `env:` values).
//!
//! The logic lives in this library so tests call it without spawning processes;
//! `main.rs` only parses arguments and prints errors.
//!
//! # Configuration files (`foco apply -f FILE.yaml`)
//!
//! One file describes one account. Applying it creates or updates, by name, the
//! account, then its providers, then its sources and their rules; applying it again
//! changes nothing. Entries that are not in the file are left alone, except rules
//! of the file's sources with `--prune`. `--dry-run` checks the file (structure and
//! `env:` values) without contacting the API.
//!
//! ```yaml
//! account: tienda-ale                 # [a-z0-9][a-z0-9-_]{0,62}
//! default_country: MX                 # ISO 3166-1 alpha-2, for local phone numbers
//! timezone: America/Mexico_City       # IANA time zone
//!
//! providers:                          # where SMS go out
//!   - name: primary
//!     kind: console                   # console | http | twilio
//!     default: true                   # the route used when a rule names none
//!   - name: twilio
//!     kind: twilio
//!     account_sid: env:TWILIO_ACCOUNT_SID   # credential (encrypted at rest)
//!     auth_token: env:TWILIO_AUTH_TOKEN     # credential (encrypted at rest)
//!     from: "+15005550006"                  # setting; or messaging_service_sid
//!     base_url: https://api.twilio.com      # setting, optional
//!   - name: hook
//!     kind: http
//!     url: http://127.0.0.1:9999/sms        # setting, required
//!     headers: { Authorization: env:HOOK_TOKEN }   # credentials, one per header
//!
//! sources:                            # where webhooks come from
//!   - name: shop
//!     verify: { scheme: hmac-sha256, header: X-Shopify-Hmac-Sha256, encoding: base64 }
//!     # or { scheme: none } (the default), or { scheme: standard-webhooks }
//!     # hmac-sha256 also takes `prefix` (stripped before decoding, e.g. "sha256=");
//!     # standard-webhooks takes `tolerance_seconds` (default 300)
//!     secret: env:SHOPIFY_WEBHOOK_SECRET   # a new value rotates; the old one stays valid
//!     event_type: header:X-Shopify-Topic   # or body:<path.to.field>
//!     event_id: header:X-Shopify-Event-Id  # the sender's id, for deduplication
//!     enabled: true                   # optional
//!     max_body_bytes: 262144          # optional
//!     rules:
//!       - name: owner-alert
//!         when: 'event_type == "orders/create" && double(event.total_price) >= 500.0'   # CEL; absent: always
//!         to: ["+52 55 1234 5678"]    # numbers or templates; env:NAME allowed
//!         body: '{{ event.customer.first_name }} acaba de comprar ${{ event.total_price }}'
//!         provider: primary           # optional; absent: the default provider
//!         from: "+15005550006"        # optional sender id / from number
//!         priority: transactional     # or marketing (respects quiet hours)
//!         enabled: true               # optional
//! ```
//!
//! A value written `env:NAME` is read from the environment when applying (an unset
//! or empty variable is an error), so secrets never live in git. It is accepted in
//! provider keys and headers, source secrets, and rule `to` and `from`.
//! Unknown keys are errors; every error names the file and the YAML location.
//! `foco apply` prints each source's webhook URL
//! (`source shop: <ingress-url>/v1/hooks/<token>`) and a summary line.

pub mod apply;
pub mod args;
pub mod commands;
pub mod error;
pub mod manifest;
pub mod output;

use std::io::Write;

use secrecy::SecretString;

pub use args::Cli;
pub use error::CliError;

use crate::apply::ApplyOptions;
use crate::args::{
    AccountsCommand, ApiKeysCommand, Command, MessagesCommand, RulesCommand, SourcesCommand,
};

/// Runs one parsed command line, writing results to `out`.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    let env = |name: &str| std::env::var(name).ok();
    if let Command::Apply(apply) = &cli.command
        && apply.dry_run
    {
        let plan = apply::dry_run(&apply.file, &env, out)?;
        return check_account_flag(cli.account.as_deref(), &plan.account.name);
    }
    let mut api = connect(&cli)?;
    let account = || cli.account.clone().ok_or(CliError::MissingAccount);
    match &cli.command {
        Command::Apply(apply) => {
            let manifest = manifest::Manifest::load(&apply.file)?;
            check_account_flag(cli.account.as_deref(), &manifest.account)?;
            let plan = manifest.resolve(&env)?;
            let options = ApplyOptions {
                ingress_url: cli.ingress_url.clone(),
                prune: apply.prune,
            };
            apply::apply_plan(&mut api, &apply.file, &plan, &options, out).await?;
            Ok(())
        }
        Command::Sources(SourcesCommand::List(format)) => {
            commands::list_sources(&mut api, &account()?, &cli.ingress_url, format.output, out)
                .await
        }
        Command::Rules(RulesCommand::List { source, format }) => {
            commands::list_rules(&mut api, &account()?, source, format.output, out).await
        }
        Command::Messages(MessagesCommand::List {
            status,
            limit,
            format,
        }) => {
            commands::list_messages(&mut api, &account()?, *status, *limit, format.output, out)
                .await
        }
        Command::Accounts(AccountsCommand::List(format)) => {
            commands::list_accounts(&mut api, format.output, out).await
        }
        Command::ApiKeys(ApiKeysCommand::Create {
            description,
            format,
        }) => {
            commands::create_api_key(&mut api, &account()?, description, format.output, out).await
        }
    }
}

/// `apply` takes the account from the file; a different `--account` is a mistake.
fn check_account_flag(flag: Option<&str>, file_account: &str) -> Result<(), CliError> {
    match flag {
        Some(flag) if flag != file_account => Err(CliError::AccountMismatch {
            flag: flag.to_owned(),
            file: file_account.to_owned(),
        }),
        _ => Ok(()),
    }
}

fn connect(cli: &Cli) -> Result<foco_control_client::ControlApi, CliError> {
    let key = cli
        .api_key
        .clone()
        .filter(|key| !key.is_empty())
        .or_else(|| {
            std::env::var("FOCO_ADMIN_API_KEY")
                .ok()
                .filter(|key| !key.is_empty())
        })
        .ok_or(CliError::MissingApiKey)?;
    foco_control_client::connect(&cli.api_url, &SecretString::from(key)).map_err(|error| {
        CliError::Connect {
            url: cli.api_url.clone(),
            message: error.to_string(),
        }
    })
}
