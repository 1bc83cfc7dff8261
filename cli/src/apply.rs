//! `foco apply`: upsert the account, then providers, sources and rules, in that
//! order (rules name providers and belong to sources), then templates and
//! status webhook endpoints. Every call is an upsert by name, so applying the
//! same file twice changes nothing.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use foco_control_client::{ControlApi, MessagingApi, webhook_url};
use foco_proto::v1::{
    DeleteEndpointRequest, DeleteRuleRequest, ListEndpointsRequest, ListRulesRequest,
};

use crate::error::CliError;
use crate::manifest::{Manifest, Plan, PlannedSource};

#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Public base URL of ingress, for the printed webhook URLs.
    pub ingress_url: String,
    /// Delete rules of the applied sources that the file does not list.
    pub prune: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedSource {
    pub name: String,
    pub token: String,
    pub webhook_url: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplySummary {
    pub account: String,
    pub providers: usize,
    pub sources: Vec<AppliedSource>,
    pub rules: usize,
    /// `source/rule` names deleted by `--prune`.
    pub pruned: Vec<String>,
    /// `source/rule: warning` from control, e.g. characters that force UCS-2.
    pub warnings: Vec<String>,
}

/// Checks a file without contacting the API: structure, `env:` values, names.
pub fn dry_run(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> Result<Plan, CliError> {
    let manifest = Manifest::load(path)?;
    let plan = manifest.resolve(env)?;
    let rules: usize = plan.sources.iter().map(|source| source.rules.len()).sum();
    let mut templates = if plan.templates.is_empty() {
        String::new()
    } else {
        format!(", {}", plan_count(plan.templates.len(), "template"))
    };
    if let Some(endpoints) = &plan.endpoints {
        templates.push_str(&format!(", {}", plan_count(endpoints.len(), "endpoint")));
    }
    writeln!(
        out,
        "{}: valid (account {}: {}, {}, {}{templates}); nothing applied",
        path.display(),
        plan.account.name,
        plan_count(plan.providers.len(), "provider"),
        plan_count(plan.sources.len(), "source"),
        plan_count(rules, "rule"),
    )?;
    Ok(plan)
}

/// Loads, resolves and applies a file.
pub async fn apply_file(
    api: &mut ControlApi,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    options: &ApplyOptions,
    out: &mut dyn Write,
) -> Result<ApplySummary, CliError> {
    let manifest = Manifest::load(path)?;
    let plan = manifest.resolve(env)?;
    apply_plan(api, path, &plan, options, out).await
}

pub async fn apply_plan(
    api: &mut ControlApi,
    path: &Path,
    plan: &Plan,
    options: &ApplyOptions,
    out: &mut dyn Write,
) -> Result<ApplySummary, CliError> {
    let located = |location: &str, what: String| located(path, location, what);
    let account_name = &plan.account.name;
    api.upsert_account(plan.account.clone())
        .await
        .map_err(located("account", format!("save account {account_name:?}")))?;
    let mut summary = ApplySummary {
        account: account_name.clone(),
        ..ApplySummary::default()
    };

    for provider in &plan.providers {
        let name = &provider.request.name;
        api.upsert_provider_route(provider.request.clone())
            .await
            .map_err(located(
                &provider.location,
                format!("save provider {name:?}"),
            ))?;
        summary.providers += 1;
    }

    for source in &plan.sources {
        let name = &source.request.name;
        let saved = api
            .upsert_source(source.request.clone())
            .await
            .map_err(located(&source.location, format!("save source {name:?}")))?
            .into_inner();
        for rule in &source.rules {
            let saved_rule = api
                .upsert_rule(rule.request.clone())
                .await
                .map_err(located(
                    &rule.location,
                    format!("save rule {:?} of source {name:?}", rule.request.name),
                ))?
                .into_inner();
            // Saved, but it may cost more than the author expects: say so now,
            // not on the first invoice.
            for warning in &saved_rule.warnings {
                let warning = format!("{name}/{}: {warning}", rule.request.name);
                writeln!(out, "warning: {warning}")?;
                summary.warnings.push(warning);
            }
            summary.rules += 1;
        }
        if options.prune {
            prune_rules(api, path, account_name, source, out, &mut summary).await?;
        }
        let webhook_url = webhook_url(&options.ingress_url, &saved.token);
        writeln!(out, "source {name}: {webhook_url}")?;
        summary.sources.push(AppliedSource {
            name: name.clone(),
            token: saved.token,
            webhook_url,
        });
    }

    let pruned = if options.prune {
        format!(", {} pruned", plan_count(summary.pruned.len(), "rule"))
    } else {
        String::new()
    };
    writeln!(
        out,
        "applied {}: account {account_name}, {}, {}, {}{pruned}",
        path.display(),
        plan_count(summary.providers, "provider"),
        plan_count(summary.sources.len(), "source"),
        plan_count(summary.rules, "rule"),
    )?;
    Ok(summary)
}

/// Saves the file's message templates (after [`apply_plan`]: the account
/// exists). Templates not in the file are left alone.
pub async fn apply_templates(
    messaging: &mut MessagingApi,
    path: &Path,
    plan: &Plan,
    out: &mut dyn Write,
) -> Result<usize, CliError> {
    for template in &plan.templates {
        let name = &template.request.name;
        let saved = messaging
            .upsert_template(template.request.clone())
            .await
            .map_err(located(
                path,
                &template.location,
                format!("save template {name:?}"),
            ))?
            .into_inner();
        for warning in &saved.warnings {
            writeln!(out, "warning: template {name}: {warning}")?;
        }
    }
    if !plan.templates.is_empty() {
        writeln!(
            out,
            "applied {}: {}",
            path.display(),
            plan_count(plan.templates.len(), "template")
        )?;
    }
    Ok(plan.templates.len())
}

/// What [`apply_endpoints`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppliedEndpoints {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    pub pruned: Vec<String>,
}

/// Saves the file's status webhook endpoints (after [`apply_plan`]: the
/// account exists), printing the signing secret of each one created without
/// a secret of the file's (once: control keeps only a sealed copy). With
/// `prune`, deletes the account's endpoints the file does not list, only
/// when the file has an `endpoints` key.
pub async fn apply_endpoints(
    messaging: &mut MessagingApi,
    path: &Path,
    plan: &Plan,
    prune: bool,
    out: &mut dyn Write,
) -> Result<AppliedEndpoints, CliError> {
    let mut applied = AppliedEndpoints::default();
    let Some(endpoints) = &plan.endpoints else {
        return Ok(applied);
    };
    for endpoint in endpoints {
        let name = &endpoint.request.name;
        let saved = messaging
            .upsert_endpoint(endpoint.request.clone())
            .await
            .map_err(located(
                path,
                &endpoint.location,
                format!("save endpoint {name:?}"),
            ))?
            .into_inner();
        let url = saved.endpoint.map(|saved| saved.url).unwrap_or_default();
        if saved.created {
            writeln!(out, "endpoint {name}: created -> {url}")?;
            if !saved.secret.is_empty() {
                writeln!(
                    out,
                    "endpoint {name}: signing secret (shown only now): {}",
                    saved.secret
                )?;
            }
            applied.created.push(name.clone());
        } else if saved.changed {
            writeln!(out, "endpoint {name}: updated -> {url}")?;
            applied.updated.push(name.clone());
        } else {
            applied.unchanged.push(name.clone());
        }
    }
    if prune {
        let account = &plan.account.name;
        let keep: BTreeSet<&str> = endpoints
            .iter()
            .map(|endpoint| endpoint.request.name.as_str())
            .collect();
        let stored = messaging
            .list_endpoints(ListEndpointsRequest {
                account: account.clone(),
            })
            .await
            .map_err(located(path, "endpoints", "list endpoints".to_owned()))?
            .into_inner()
            .endpoints;
        for stale in stored
            .iter()
            .filter(|endpoint| !keep.contains(endpoint.name.as_str()))
        {
            messaging
                .delete_endpoint(DeleteEndpointRequest {
                    account: account.clone(),
                    id: stale.id.clone(),
                })
                .await
                .map_err(located(
                    path,
                    "endpoints",
                    format!("prune endpoint {:?}", stale.name),
                ))?;
            writeln!(out, "pruned endpoint {}", stale.name)?;
            applied.pruned.push(stale.name.clone());
        }
    }
    writeln!(
        out,
        "applied {}: {} ({} created, {} updated, {} unchanged{})",
        path.display(),
        plan_count(endpoints.len(), "endpoint"),
        applied.created.len(),
        applied.updated.len(),
        applied.unchanged.len(),
        if prune {
            format!(", {} pruned", applied.pruned.len())
        } else {
            String::new()
        }
    )?;
    Ok(applied)
}

/// Deletes the stored rules of `source` that its manifest no longer lists.
async fn prune_rules(
    api: &mut ControlApi,
    path: &Path,
    account_name: &str,
    source: &PlannedSource,
    out: &mut dyn Write,
    summary: &mut ApplySummary,
) -> Result<(), CliError> {
    let name = &source.request.name;
    let keep: BTreeSet<&str> = source
        .rules
        .iter()
        .map(|rule| rule.request.name.as_str())
        .collect();
    let stored = api
        .list_rules(ListRulesRequest {
            account: account_name.to_owned(),
            source: name.clone(),
        })
        .await
        .map_err(located(
            path,
            &source.location,
            format!("list rules of source {name:?}"),
        ))?
        .into_inner()
        .rules;
    for stale in stored
        .iter()
        .filter(|rule| !keep.contains(rule.name.as_str()))
    {
        api.delete_rule(DeleteRuleRequest {
            account: account_name.to_owned(),
            source: name.clone(),
            name: stale.name.clone(),
        })
        .await
        .map_err(located(
            path,
            &source.location,
            format!("prune rule {:?}", stale.name),
        ))?;
        writeln!(out, "pruned rule {name}/{}", stale.name)?;
        summary.pruned.push(format!("{name}/{}", stale.name));
    }
    Ok(())
}

/// Turns an API refusal into an error naming the manifest's file and the
/// place in it.
fn located(
    path: &Path,
    location: &str,
    what: String,
) -> impl FnOnce(tonic::Status) -> CliError + use<> {
    let context = format!("{}: {location}: ", path.display());
    move |status| CliError::Api {
        context,
        what,
        status,
    }
}

fn plan_count(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
