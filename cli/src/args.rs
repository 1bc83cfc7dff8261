//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::OutputFormat;

#[derive(Debug, Parser)]
#[command(
    name = "foco",
    version = foco_runtime::build_info::VERSION_LINE,
    about = "Foco: turn webhooks into SMS. Apply configuration files and inspect sources, rules and messages.",
    after_help = "Configuration files for `foco apply` are documented in the foco-cli crate (cli/src/lib.rs)."
)]
pub struct Cli {
    /// The control gRPC API.
    #[arg(
        long,
        env = "FOCO_API_URL",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub api_url: String,
    /// PEM file of the certificate authority to trust for an https:// API URL
    /// (a private CA or a self-signed certificate); without it, the system's roots.
    #[arg(long, env = "FOCO_API_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// API key (admin or account). Falls back to FOCO_ADMIN_API_KEY.
    #[arg(long, env = "FOCO_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// Public base URL of ingress, used to print webhook URLs.
    #[arg(
        long,
        env = "FOCO_INGRESS_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub ingress_url: String,
    /// Account the command acts on (`apply` reads it from the file).
    #[arg(long, env = "FOCO_ACCOUNT", global = true)]
    pub account: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update an account's providers, sources and rules from a YAML file (idempotent).
    #[command(after_long_help = crate::manifest::kinds_help())]
    Apply(ApplyArgs),
    /// Webhook sources.
    #[command(subcommand)]
    Sources(SourcesCommand),
    /// Rules of a source.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// SMS messages and their status.
    #[command(subcommand)]
    Messages(MessagesCommand),
    /// Accounts visible to the API key.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// API keys of an account (or, with --services / --service, the services' keys): list, create, revoke.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(crate::api_keys::ApiKeysCommand),
    /// Render a source's rules against a sample payload: match, recipients, text, encoding, segments, send time.
    Preview(crate::preview::PreviewArgs),
    /// Delayed SMS jobs: list and cancel.
    #[command(subcommand)]
    Jobs(crate::jobs::JobsCommand),
    /// What happened to events, rule by rule.
    #[command(subcommand)]
    Events(crate::events::EventsCommand),
    /// Jobs that failed until they ran out of attempts: list, show, retry.
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(crate::delivery::DeadLettersCommand),
    /// Numbers that must not receive SMS: list, add, remove.
    #[command(subcommand, name = "opt-outs")]
    OptOuts(crate::delivery::OptOutsCommand),
    /// Send one SMS through the same pipeline as a rule's (opt-outs, quiet hours, routes, exactly once).
    Send(crate::messaging::SendArgs),
    /// Store an event of a source as its webhook would; the source's rules run on it.
    Trigger(crate::messaging::TriggerArgs),
    /// Status webhooks: endpoints, their deliveries, replays.
    #[command(subcommand)]
    Endpoints(crate::endpoints::EndpointsCommand),
    /// Message templates `foco send --template` renders: list, get, upsert, delete, preview.
    #[command(subcommand)]
    Templates(crate::templates::TemplatesCommand),
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The configuration file.
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// Check the file (structure and env: values) without contacting the API.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete rules of the applied sources that are not in the file, and,
    /// when the file has an `endpoints` key, endpoints it does not list.
    #[arg(long)]
    pub prune: bool,
}

#[derive(Debug, Args)]
pub struct FormatArg {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum SourcesCommand {
    /// List the account's sources and their webhook URLs.
    List(FormatArg),
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List a source's rules.
    List {
        #[arg(long)]
        source: String,
        #[command(flatten)]
        format: FormatArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum MessagesCommand {
    /// List messages, newest first.
    List {
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// How many (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Status changes as they happen (sent, delivered, failed, ..., inbound),
    /// resumable with --after.
    Watch(crate::endpoints::WatchArgs),
    /// One message's whole story: what made it, the rule's decisions, its wait
    /// in the scheduler, each provider attempt, receipts and its state now.
    Show {
        /// The message's id (`messages list`'s JOB ID, SendMessage's message_id).
        message_id: String,
        #[command(flatten)]
        format: FormatArg,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusArg {
    Queued,
    Sending,
    Sent,
    Failed,
    Unknown,
    Delivered,
    Undelivered,
    Cancelled,
    OptedOut,
    /// Reached the sender past its deadline (`valid_for`): not sent.
    Expired,
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    List(FormatArg),
}
