//! The `foco` command line: applies configuration files to the control API,
//! lists sources, rules, messages and accounts, previews rules against sample
//! payloads, and lists or cancels delayed jobs. It is a thin client: every check
//! that matters (names, CEL conditions, templates, provider settings) is made by
//! control; the CLI adds what only a file can have (locations, `env:` values).
//!
//! The logic lives in this library so tests call it without spawning processes;
//! `main.rs` only parses arguments and prints errors.
//!
//! # Configuration files (`foco apply -f FILE.yaml`)
//!
//! One file describes one account. Applying it creates or updates, by name, the
//! account, then its providers, then its sources and their rules, then its
//! message templates; applying it again
//! changes nothing. Entries that are not in the file are left alone, except rules
//! of the file's sources with `--prune`. `--dry-run` checks the file (structure and
//! `env:` values) without contacting the API.
//!
//! ```yaml
//! account: tienda-ale                 # [a-z0-9][a-z0-9-_]{0,62}
//! default_country: MX                 # ISO 3166-1 alpha-2, for local phone numbers
//! timezone: America/Mexico_City       # IANA time zone
//! daily_sms_cap: 500                  # optional: at most this many SMS a day (account's time zone)
//! default_valid_for: 4h               # optional: how long after its due time an SMS may still
//!                                     #   go out unless its rule says (default 1h); later: expired
//! inbound_source: sms                 # optional: the source (below) SMS the account receives
//!                                     #   become events of (type sms.inbound, payload {from, to,
//!                                     #   body, route, provider, provider_message_id, received_at});
//!                                     #   STOP/START/HELP never do
//!
//! providers:                          # where SMS go out
//!   - name: primary
//!     kind: http                      # console | http | twilio | vonage | infobip | smsmasivos | telnyx (all keys: `foco apply --help`)
//!     url: http://127.0.0.1:9999/sms  # setting, required for http
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
//!     preset: shopify                 # signature scheme + where event type and id live
//!     # presets: standard-webhooks stripe shopify woocommerce github typeform calendly
//!     #   hubspot mercadopago tiendanube hotmart twilio generic basic-auth bearer none
//!     secret: env:SHOPIFY_WEBHOOK_SECRET   # a new value rotates; the old one stays valid
//!     # or secrets: [env:NEW_SECRET, env:OLD_SECRET]   # exactly these (at most 2), current first
//!     rate_limit: 100/s               # optional, per ingress replica: 100/s, 6000/m, or
//!                                     #   { per_second: 100, burst: 500 }; beyond it 429
//!                                     #   (absent: the operator's default, 500/s)
//!     enabled: true                   # optional; a disabled source answers 410
//!     max_body_bytes: 262144          # optional (default 256 KiB; 413 beyond)
//!     rules:
//!       - name: owner-alert
//!         when: 'event_type == "orders/create" && double(event.total_price) >= 500.0'   # CEL; absent: always
//!         to: ["+52 55 1234 5678"]    # numbers or templates; env:NAME allowed
//!         body: '{{ event.customer.first_name }} acaba de comprar ${{ event.total_price }}'
//!         provider: primary           # optional; absent: the default provider
//!         from: "+15005550006"        # optional sender id / from number
//!         priority: transactional     # or marketing (respects quiet hours)
//!         enabled: true               # optional
//!         encoding: unicode           # optional: unicode (default, keep the text) or gsm7
//!                                     #   (transliterate á→a so "tu código" stays 160 a segment)
//!         max_segments: 2             # optional: a longer message is an error on the event, not sent
//!         cap: { count: 1, window: 24h }   # optional: at most 1 per recipient per 24 h
//!   - name: payments
//!     preset: stripe
//!     secret: env:STRIPE_WEBHOOK_SECRET
//!     tolerance: 10m                  # timestamped presets only (default 5m, at most 24h)
//!   - name: crm
//!     preset: generic                 # any other HMAC signer
//!     secret: env:CRM_SECRET
//!     signature:
//!       header: X-Signature
//!       algorithm: sha256             # sha256 (default), sha1 or sha512
//!       encoding: hex                 # or base64
//!       prefix: "sha256="             # optional, stripped before decoding
//!       timestamp_header: X-Timestamp # optional; checked against `tolerance`
//!       signed_content: "{timestamp}.{body}"   # optional (default {body}); also {method}
//!                                     #   {url} {header:Name}
//!   - name: legacy
//!     verify: { scheme: hmac-sha256, header: X-Shopify-Hmac-Sha256, encoding: base64 }
//!     # instead of a preset: { scheme: none } (the default), { scheme: standard-webhooks }
//!     # hmac-sha256 also takes `prefix` (stripped before decoding, e.g. "sha256=");
//!     # standard-webhooks takes `tolerance_seconds` (default 300, at most 86400)
//!     secret: env:LEGACY_WEBHOOK_SECRET
//!     event_type: header:X-Shopify-Topic   # or body:<path.to.field>; overrides a preset's
//!     event_id: header:X-Shopify-Event-Id  # the sender's id, for deduplication;
//!                                     #   alternatives: "header:A|header:B". A header
//!                                     #   that a body-only signature (this one) leaves
//!                                     #   out is kept for reading: the body names the event
//!     content_type: json              # optional: how bodies without a usable
//!                                     #   Content-Type are read (json or form)
//!
//! endpoints:                          # status webhooks (optional; with the key present,
//!                                     #   --prune deletes endpoints not listed)
//!   - name: crm                       # [a-z0-9][a-z0-9-_]{0,62}, unique in the account
//!     url: https://crm.example.com/foco/status
//!     events: [message.delivered, message.failed, inbound.received]  # absent: all
//!     description: CRM timeline       # optional
//!     secret: env:CRM_WEBHOOK_SECRET  # optional, env: only: a whsec_ secret to sign
//!                                     #   with (changing it rotates: the old one signs
//!                                     #   beside it for 24 h); absent: control makes
//!                                     #   one, printed once when the endpoint is created
//!
//! templates:                          # message templates SendMessage / `foco send
//!                                     #   --template` render by name (saved after the rest)
//!   - name: otp                       # [a-z0-9][a-z0-9-_]{0,62}
//!     body: 'Tu código es {{ code }}' # minijinja over the send's variables and `account`;
//!                                     #   a variable not given refuses the send
//!     encoding: gsm7                  # optional: unicode (default) or gsm7
//! ```
//!
//! ## Delayed and cancellable rules
//!
//! | key | meaning |
//! |-----|---------|
//! | `delay` | wait after the event: `30m`, `1h30m`, `5d` (at most 400 days) |
//! | `send_at` | instead of `delay`: a template giving the send time, RFC 3339 or local `YYYY-MM-DD HH:MM` in the account's time zone; one hour before an appointment: `'{{ event.start_time \| shift("-1h") }}'` |
//! | `key` | correlation key template that identifies the pending job, e.g. `'{{ event.customer.email }}'` |
//! | `cancel_when` | CEL condition over any later event of the account that cancels the pending jobs… |
//! | `cancel_key` | …whose `key` equals this template rendered on that later event |
//! | `on_repeat` | a new trigger with the same key while a job is pending: `replace` (default) or `keep_first` |
//! | `valid_for` | how long after its due time (the event's arrival, or `delay` / `send_at`) the SMS may still go out: `10m`, `2h`, `3d` (1 minute to 400 days; absent: the account's `default_valid_for`, else 1h). Later (an outage, a long throttle, a `send_at` already past) it is recorded `expired` with the reason, never sent |
//!
//! `delay` and `send_at` exclude each other; `cancel_when` and `cancel_key` go
//! together and need `key`, as does `on_repeat`. The file is checked for that;
//! durations, conditions and templates are checked by control when applying.
//!
//! Scenario 2, a reminder five days after sign-up unless the customer buys:
//!
//! ```yaml
//!       - name: code-reminder
//!         when: 'event_type == "customers/create"'
//!         to: ['{{ event.phone }}']
//!         body: 'Hola {{ event.name | first_name }}, tu código BIENVENIDA10 sigue vigente'
//!         encoding: gsm7              # "código" would otherwise make it UCS-2
//!         delay: 5d
//!         key: '{{ event.email }}'
//!         cancel_when: 'event_type == "orders/create"'
//!         cancel_key: '{{ event.customer.email }}'
//!         on_repeat: keep_first       # a second sign-up does not push the reminder back
//! ```
//!
//! Scenario 3, an abandoned cart: the checkout's token is the key, and an order
//! carries it as `checkout_token`:
//!
//! ```yaml
//!       - name: abandoned-cart
//!         when: 'event_type == "checkouts/create"'
//!         to: ['{{ event.phone | default(event.customer.phone) }}']
//!         body: 'Tu carrito te espera: {{ event.abandoned_checkout_url }}'
//!         delay: 1h
//!         key: '{{ event.token }}'
//!         cancel_when: 'event_type == "orders/create"'
//!         cancel_key: '{{ event.checkout_token }}'
//!         cap: { count: 1, window: 24h }
//! ```
//!
//! Check a rule before relying on it: `foco preview --source shop --rule
//! abandoned-cart --payload checkout.json -H 'X-Shopify-Topic: checkouts/create'`
//! shows whether it matches, the normalised recipients, the text, its encoding and
//! segments, the send time and key. `foco jobs list --rule abandoned-cart` shows
//! the pending jobs, `foco jobs cancel --rule abandoned-cart --key TOKEN` cancels
//! them, and `foco events show EVENT_ID` tells what each rule did with an event.
//!
//! A value written `env:NAME` is read from the environment when applying (an unset
//! or empty variable is an error), so secrets never live in git. It is accepted in
//! provider keys and headers, source secrets, and rule `to` and `from`.
//! Unknown keys are errors; every error names the file and the YAML location.
//! `foco apply` prints each source's webhook URL
//! (`source shop: <ingress-url>/v1/hooks/<token>`), a summary line, and the
//! warnings control returns for saved rules, e.g.
//! `warning: shop/owner-alert: body contains 'ó' which forces UCS-2 (70 characters
//! per segment instead of 160); use encoding: gsm7 to transliterate`.

pub mod api_keys;
pub mod apply;
pub mod args;
pub mod commands;
pub mod delivery;
pub mod endpoints;
pub mod error;
pub mod events;
pub mod jobs;
pub mod local_time;
pub mod manifest;
pub mod messaging;
pub mod output;
pub mod preview;
pub mod templates;

use std::io::Write;

use secrecy::SecretString;

pub use args::Cli;
pub use error::CliError;

use crate::apply::ApplyOptions;
use crate::args::{AccountsCommand, Command, MessagesCommand, RulesCommand, SourcesCommand};

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
            if !plan.templates.is_empty() || plan.endpoints.is_some() {
                let mut messaging = connect_messaging(&cli)?;
                apply::apply_templates(&mut messaging, &apply.file, &plan, out).await?;
                apply::apply_endpoints(&mut messaging, &apply.file, &plan, apply.prune, out)
                    .await?;
            }
            Ok(())
        }
        Command::Sources(SourcesCommand::List(format)) => {
            commands::list_sources(&mut api, &account()?, &cli.ingress_url, format.output, out)
                .await
        }
        Command::Rules(RulesCommand::List { source, format }) => {
            commands::list_rules(&mut api, &account()?, source, format.output, out).await
        }
        Command::Messages(command) => messages(&cli, &mut api, &account()?, command, out).await,
        Command::Endpoints(command) => {
            endpoints::run(&mut connect_messaging(&cli)?, &account()?, command, out).await
        }
        Command::Accounts(AccountsCommand::List(format)) => {
            commands::list_accounts(&mut api, format.output, out).await
        }
        Command::ApiKeys(command) => {
            let account = if command.needs_account() {
                account()?
            } else {
                String::new()
            };
            api_keys::run(&mut api, &account, command, out).await
        }
        Command::Preview(args) => {
            let payload = preview::read_payload(&args.payload, &mut std::io::stdin().lock())?;
            let request = preview::preview_request(&account()?, args, payload);
            let mut scheduling = connect_scheduling(&cli)?;
            preview::preview(&mut api, &mut scheduling, request, args.format.output, out).await
        }
        Command::Jobs(jobs::JobsCommand::Unknown(command)) => {
            delivery::unknown_jobs(&mut connect_delivery(&cli)?, &account()?, command, out).await
        }
        Command::DeadLetters(command) => {
            delivery::dead_letters(&mut connect_delivery(&cli)?, &account()?, command, out).await
        }
        Command::OptOuts(command) => {
            delivery::opt_outs(&mut connect_delivery(&cli)?, &account()?, command, out).await
        }
        Command::Jobs(command) => {
            jobs::run(&mut connect_scheduling(&cli)?, &account()?, command, out).await
        }
        Command::Events(command) => {
            let mut scheduling = connect_scheduling(&cli)?;
            events::run(&mut api, &mut scheduling, &account()?, command, out).await
        }
        // An account key names its own account: --account is needed with the
        // admin key only, and control says so.
        Command::Send(args) => {
            let account = cli.account.clone().unwrap_or_default();
            messaging::send(&mut connect_messaging(&cli)?, &account, args, out).await
        }
        Command::Templates(command) => {
            let account = cli.account.clone().unwrap_or_default();
            templates::run(&mut connect_messaging(&cli)?, &account, command, out).await
        }
        Command::Trigger(args) => {
            let payload = preview::read_payload(&args.payload, &mut std::io::stdin().lock())?;
            let account = cli.account.clone().unwrap_or_default();
            messaging::trigger(&mut connect_messaging(&cli)?, &account, args, payload, out).await
        }
    }
}

/// `foco messages …`.
async fn messages(
    cli: &Cli,
    api: &mut foco_control_client::ControlApi,
    account: &str,
    command: &MessagesCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        MessagesCommand::List {
            status,
            limit,
            format,
        } => commands::list_messages(api, account, *status, *limit, format.output, out).await,
        MessagesCommand::Show { message_id, format } => {
            let mut delivery = connect_delivery(cli)?;
            delivery::show_message(&mut delivery, account, message_id, format.output, out).await
        }
        MessagesCommand::Watch(args) => {
            endpoints::watch(&mut connect_messaging(cli)?, account, args, out).await
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

/// One lazily dialled channel to control (TLS for an `https://` URL, trusting
/// `--ca-file` when given) and the caller's key: every API of control is served
/// on the same address with the same keys.
fn channel(
    cli: &Cli,
) -> Result<(tonic::transport::Channel, foco_control_client::BearerAuth), CliError> {
    let connect_error = |error: foco_control_client::ControlClientError| {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message = format!("{message}: {cause}");
            source = cause.source();
        }
        CliError::Connect {
            url: cli.api_url.clone(),
            message,
        }
    };
    let channel = foco_control_client::lazy_channel_with_ca(&cli.api_url, cli.ca_file.as_deref())
        .map_err(connect_error)?;
    let auth = foco_control_client::BearerAuth::new(&api_key(cli)?).map_err(connect_error)?;
    Ok((channel, auth))
}

fn connect(cli: &Cli) -> Result<foco_control_client::ControlApi, CliError> {
    let (channel, auth) = channel(cli)?;
    Ok(foco_control_client::control_api(channel, auth))
}

fn connect_scheduling(cli: &Cli) -> Result<foco_control_client::SchedulingApi, CliError> {
    let (channel, auth) = channel(cli)?;
    Ok(foco_control_client::scheduling_api(channel, auth))
}

fn connect_delivery(cli: &Cli) -> Result<foco_control_client::DeliveryApi, CliError> {
    let (channel, auth) = channel(cli)?;
    Ok(foco_control_client::delivery_api(channel, auth))
}

fn connect_messaging(cli: &Cli) -> Result<foco_control_client::MessagingApi, CliError> {
    let (channel, auth) = channel(cli)?;
    Ok(foco_control_client::messaging_api(channel, auth))
}

fn api_key(cli: &Cli) -> Result<SecretString, CliError> {
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
    Ok(SecretString::from(key))
}
