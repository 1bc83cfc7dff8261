//! From a parsed manifest to control API requests: `env:NAME` values are read,
//! provider keys are split into settings and credentials, and checks that span
//! entries (duplicate names, more than one default provider) are made.

use std::collections::{BTreeSet, HashMap};

use foco_proto::v1::{
    HmacSha256, NoVerification, Priority, SignatureEncoding, StandardWebhooks,
    UpsertAccountRequest, UpsertEndpointRequest, UpsertProviderRouteRequest, UpsertRuleRequest,
    UpsertSourceRequest, UpsertTemplateRequest, Verification, verification,
};

use super::{EncodingSpec, Manifest, ManifestError, PrioritySpec, SourceSpec, VerifySpec};
use foco_providers::Storage;

/// Prefix of a value read from the environment at apply time.
pub const ENV_PREFIX: &str = "env:";

/// A request and where in the file it came from (for error messages).
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub location: String,
    pub request: T,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedSource {
    pub location: String,
    pub request: UpsertSourceRequest,
    pub rules: Vec<Located<UpsertRuleRequest>>,
}

/// What `foco apply` sends, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub account: UpsertAccountRequest,
    pub providers: Vec<Located<UpsertProviderRouteRequest>>,
    pub sources: Vec<PlannedSource>,
    pub templates: Vec<Located<UpsertTemplateRequest>>,
    /// `None` when the file has no `endpoints` key.
    pub endpoints: Option<Vec<Located<UpsertEndpointRequest>>>,
}

impl Manifest {
    /// Builds the requests; `env` looks environment variables up (tests pass a map).
    pub fn resolve(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Plan, ManifestError> {
        let resolver = Resolver {
            manifest: self,
            env,
        };
        let account = UpsertAccountRequest {
            name: self.account.clone(),
            default_country: self.default_country.clone(),
            timezone: self.timezone.clone(),
            daily_sms_cap: self.daily_sms_cap.unwrap_or_default(),
            default_valid_for: self.default_valid_for.clone().unwrap_or_default(),
            inbound_source: self.inbound_source.clone().unwrap_or_default(),
        };
        if self.daily_sms_cap == Some(0) {
            return Err(self.invalid(
                "daily_sms_cap",
                "must be at least 1; leave the key out for no cap",
            ));
        }
        if self
            .default_valid_for
            .as_deref()
            .is_some_and(|text| text.trim().is_empty())
        {
            return Err(self.invalid(
                "default_valid_for",
                "is empty; leave the key out for the default (1h)",
            ));
        }
        let providers = resolver.providers()?;
        self.check_unique_names(
            "sources",
            "source",
            self.sources.iter().map(|source| source.name.as_str()),
        )?;
        let mut sources = Vec::with_capacity(self.sources.len());
        for (index, source) in self.sources.iter().enumerate() {
            sources.push(resolver.source(&format!("sources[{index}]"), source)?);
        }
        self.check_unique_names(
            "templates",
            "template",
            self.templates.iter().map(|template| template.name.as_str()),
        )?;
        let mut templates = Vec::with_capacity(self.templates.len());
        for (index, template) in self.templates.iter().enumerate() {
            templates.push(Located {
                location: format!("templates[{index}]"),
                request: UpsertTemplateRequest {
                    account: self.account.clone(),
                    name: template.name.clone(),
                    body: template.body.clone(),
                    encoding: template
                        .encoding
                        .map(|encoding| encoding.as_str().to_owned())
                        .unwrap_or_default(),
                },
            });
        }
        let endpoints = self
            .endpoints
            .as_deref()
            .map(|endpoints| resolver.endpoints(endpoints))
            .transpose()?;
        Ok(Plan {
            account,
            providers,
            sources,
            templates,
            endpoints,
        })
    }
}

impl Manifest {
    /// Refuses a name that a list (`sources`, `templates`) holds twice.
    fn check_unique_names<'a>(
        &self,
        list: &str,
        noun: &str,
        names: impl Iterator<Item = &'a str>,
    ) -> Result<(), ManifestError> {
        let mut seen = BTreeSet::new();
        for (index, name) in names.enumerate() {
            if !seen.insert(name) {
                return Err(self.invalid(
                    format!("{list}[{index}].name"),
                    format!("{noun} {name:?} appears twice"),
                ));
            }
        }
        Ok(())
    }
}

struct Resolver<'a> {
    manifest: &'a Manifest,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Resolver<'_> {
    fn endpoints(
        &self,
        endpoints: &[super::EndpointSpec],
    ) -> Result<Vec<Located<UpsertEndpointRequest>>, ManifestError> {
        self.manifest.check_unique_names(
            "endpoints",
            "endpoint",
            endpoints.iter().map(|endpoint| endpoint.name.as_str()),
        )?;
        endpoints
            .iter()
            .enumerate()
            .map(|(index, endpoint)| {
                let location = format!("endpoints[{index}]");
                let secret = match &endpoint.secret {
                    None => String::new(),
                    Some(raw) if raw.starts_with(ENV_PREFIX) => {
                        self.value(&format!("{location}.secret"), raw)?
                    }
                    // A secret written in the file would be in version control.
                    Some(_) => {
                        return Err(self.manifest.invalid(
                            format!("{location}.secret"),
                            "write env:NAME and keep the secret in that variable",
                        ));
                    }
                };
                Ok(Located {
                    request: UpsertEndpointRequest {
                        account: self.manifest.account.clone(),
                        name: endpoint.name.clone(),
                        url: endpoint.url.clone(),
                        event_types: endpoint.events.clone(),
                        description: endpoint.description.clone().unwrap_or_default(),
                        secret,
                    },
                    location,
                })
            })
            .collect()
    }

    /// `env:NAME` → the variable's value; anything else as written.
    fn value(&self, location: &str, raw: &str) -> Result<String, ManifestError> {
        let Some(variable) = raw.strip_prefix(ENV_PREFIX) else {
            return Ok(raw.to_owned());
        };
        let variable = variable.trim();
        if variable.is_empty() {
            return Err(self.manifest.invalid(
                location,
                "`env:` needs a variable name, e.g. env:TWILIO_AUTH_TOKEN",
            ));
        }
        match (self.env)(variable) {
            Some(value) if !value.is_empty() => Ok(value),
            Some(_) => Err(self.manifest.invalid(
                location,
                format!("environment variable {variable} is empty"),
            )),
            None => Err(self.manifest.invalid(
                location,
                format!("environment variable {variable} is not set"),
            )),
        }
    }

    fn providers(&self) -> Result<Vec<Located<UpsertProviderRouteRequest>>, ManifestError> {
        let mut names = BTreeSet::new();
        let mut default: Option<&str> = None;
        let mut requests = Vec::new();
        for (index, provider) in self.manifest.providers.iter().enumerate() {
            let location = format!("providers[{index}]");
            if !names.insert(provider.name.as_str()) {
                return Err(self.manifest.invalid(
                    format!("{location}.name"),
                    format!("provider {:?} appears twice", provider.name),
                ));
            }
            if provider.default {
                if let Some(first) = default {
                    return Err(self.manifest.invalid(
                        format!("{location}.default"),
                        format!("only one provider can be the default; {first:?} already is"),
                    ));
                }
                default = Some(&provider.name);
            }
            let mut settings = HashMap::new();
            let mut credentials = HashMap::new();
            for (key, raw) in &provider.options {
                let value = self.value(&format!("{location}.{key}"), raw)?;
                match provider.kind.spec().storage_of(key) {
                    Storage::Setting => settings.insert(key.clone(), value),
                    Storage::Credential => credentials.insert(key.clone(), value),
                };
            }
            for (header, raw) in &provider.headers {
                let value = self.value(&format!("{location}.headers.{header}"), raw)?;
                credentials.insert(header.clone(), value);
            }
            requests.push(Located {
                location,
                request: UpsertProviderRouteRequest {
                    account: self.manifest.account.clone(),
                    name: provider.name.clone(),
                    kind: provider.kind.id().to_owned(),
                    settings,
                    credentials,
                    is_default: provider.default,
                },
            });
        }
        Ok(requests)
    }

    fn source(&self, location: &str, source: &SourceSpec) -> Result<PlannedSource, ManifestError> {
        let secret = match &source.secret {
            Some(raw) => self.value(&format!("{location}.secret"), raw)?,
            None => String::new(),
        };
        let secrets = match &source.secrets {
            None => Vec::new(),
            Some(_) if source.secret.is_some() => {
                return Err(self.manifest.invalid(
                    format!("{location}.secrets"),
                    "`secret` and `secrets` exclude each other",
                ));
            }
            Some(listed) if listed.is_empty() || listed.len() > 2 => {
                return Err(self.manifest.invalid(
                    format!("{location}.secrets"),
                    "lists one or two secrets, current first",
                ));
            }
            Some(listed) => listed
                .iter()
                .enumerate()
                .map(|(index, raw)| self.value(&format!("{location}.secrets[{index}]"), raw))
                .collect::<Result<Vec<_>, _>>()?,
        };
        let mut request = UpsertSourceRequest {
            account: self.manifest.account.clone(),
            name: source.name.clone(),
            verification: Some(verification_request(source.verify.as_ref())),
            secret,
            event_type_from: source.event_type.clone().unwrap_or_default(),
            event_id_from: source.event_id.clone().unwrap_or_default(),
            enabled: source.enabled,
            max_body_bytes: source.max_body_bytes.unwrap_or_default(),
            secrets,
            ..UpsertSourceRequest::default()
        };
        self.manifest
            .apply_source_keys(location, source, &mut request)?;
        let mut rule_names = BTreeSet::new();
        let mut rules = Vec::with_capacity(source.rules.len());
        for (index, rule) in source.rules.iter().enumerate() {
            let rule_location = format!("{location}.rules[{index}]");
            if !rule_names.insert(rule.name.as_str()) {
                return Err(self.manifest.invalid(
                    format!("{rule_location}.name"),
                    format!(
                        "rule {:?} appears twice in source {:?}",
                        rule.name, source.name
                    ),
                ));
            }
            let to = rule
                .to
                .iter()
                .enumerate()
                .map(|(to_index, raw)| self.value(&format!("{rule_location}.to[{to_index}]"), raw))
                .collect::<Result<Vec<_>, _>>()?;
            let from = match &rule.from {
                Some(raw) => self.value(&format!("{rule_location}.from"), raw)?,
                None => String::new(),
            };
            let priority = match rule.priority {
                None => Priority::Unspecified,
                Some(PrioritySpec::Transactional) => Priority::Transactional,
                Some(PrioritySpec::Marketing) => Priority::Marketing,
            };
            let mut request = UpsertRuleRequest {
                account: self.manifest.account.clone(),
                source: source.name.clone(),
                name: rule.name.clone(),
                when: rule.when.clone().unwrap_or_default(),
                to,
                body: rule.body.clone(),
                provider: rule.provider.clone().unwrap_or_default(),
                from,
                priority: priority as i32,
                enabled: rule.enabled,
                ..UpsertRuleRequest::default()
            };
            self.manifest
                .apply_schedule_keys(&rule_location, rule, &mut request)?;
            rules.push(Located {
                location: rule_location,
                request,
            });
        }
        Ok(PlannedSource {
            location: location.to_owned(),
            request,
            rules,
        })
    }
}

fn verification_request(verify: Option<&VerifySpec>) -> Verification {
    let scheme = match verify {
        None | Some(VerifySpec::None) => verification::Scheme::None(NoVerification {}),
        Some(VerifySpec::StandardWebhooks { tolerance_seconds }) => {
            verification::Scheme::StandardWebhooks(StandardWebhooks {
                tolerance_seconds: *tolerance_seconds,
            })
        }
        Some(VerifySpec::HmacSha256 {
            header,
            encoding,
            prefix,
        }) => verification::Scheme::HmacSha256(HmacSha256 {
            header: header.clone(),
            encoding: match encoding {
                EncodingSpec::Hex => SignatureEncoding::Hex,
                EncodingSpec::Base64 => SignatureEncoding::Base64,
            } as i32,
            prefix: prefix.clone(),
        }),
    };
    Verification {
        scheme: Some(scheme),
    }
}
