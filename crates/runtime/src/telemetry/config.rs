//! Where spans go, from the standard OpenTelemetry variables. Read here rather
//! than by the SDK so that a mistake stops the service at start with a clear
//! message (the SDK falls back to defaults quietly), and so that tests build a
//! `TracingConfig` value instead of setting variables.

use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::Sampler;

use crate::env::{ConfigError, Env};

/// How spans are exported: OTLP to `endpoint`, or nowhere.
#[derive(Debug, Clone)]
pub struct TracingConfig {
    /// `service.name`: `OTEL_SERVICE_NAME`, else `service.name` in
    /// `OTEL_RESOURCE_ATTRIBUTES`, else the binary's name.
    pub service_name: String,
    /// `None`: no exporter and no OpenTelemetry layer, so spans cost nothing
    /// beyond the logs.
    pub exporter: Option<OtlpExporter>,
    pub sampler: Sampler,
    /// Extra resource attributes (`OTEL_RESOURCE_ATTRIBUTES`).
    pub resource_attributes: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpExporter {
    pub protocol: OtlpProtocol,
    /// The collector's URL: for gRPC its base (`http://collector:4317`), for
    /// HTTP the full traces URL (`http://collector:4318/v1/traces`).
    pub endpoint: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    Grpc,
    HttpProtobuf,
}

impl TracingConfig {
    /// Export nothing (what an unset environment means).
    pub fn disabled(service_name: &str) -> Self {
        Self {
            service_name: service_name.to_owned(),
            exporter: None,
            sampler: Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            resource_attributes: Vec::new(),
        }
    }

    /// Export every span to `exporter` (tests; services read the environment).
    pub fn exporting(service_name: &str, exporter: OtlpExporter) -> Self {
        Self {
            exporter: Some(exporter),
            sampler: Sampler::AlwaysOn,
            ..Self::disabled(service_name)
        }
    }

    /// Reads `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`),
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` (or `..._TRACES_PROTOCOL`; `grpc` or
    /// `http/protobuf`, the default), `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`,
    /// `OTEL_TRACES_SAMPLER_ARG`, `OTEL_RESOURCE_ATTRIBUTES`; `OTEL_SDK_DISABLED=true`
    /// or `OTEL_TRACES_EXPORTER=none` turn export off. Without an endpoint
    /// nothing is exported.
    pub fn from_lookup(default_service_name: &str, env: &Env) -> Result<Self, ConfigError> {
        let lookup = |name: &str| env.optional(name);
        let resource_attributes = match lookup("OTEL_RESOURCE_ATTRIBUTES") {
            Some(text) => parse_resource_attributes(&text)
                .map_err(|reason| ConfigError::new("OTEL_RESOURCE_ATTRIBUTES", &text, reason))?,
            None => Vec::new(),
        };
        let service_name = lookup("OTEL_SERVICE_NAME")
            .or_else(|| {
                resource_attributes
                    .iter()
                    .find(|attribute| attribute.key.as_str() == "service.name")
                    .map(|attribute| attribute.value.to_string())
            })
            .unwrap_or_else(|| default_service_name.to_owned());
        let sampler = parse_sampler(
            lookup("OTEL_TRACES_SAMPLER").as_deref(),
            lookup("OTEL_TRACES_SAMPLER_ARG").as_deref(),
        )?;
        let disabled = sdk_disabled(&lookup)?;
        let exporter_kind = lookup("OTEL_TRACES_EXPORTER");
        match exporter_kind.as_deref().map(str::trim) {
            None | Some("otlp") => {}
            Some("none") => {
                return Ok(Self::without_exporter(
                    service_name,
                    sampler,
                    resource_attributes,
                ));
            }
            Some(_) => {
                return Err(ConfigError::new(
                    "OTEL_TRACES_EXPORTER",
                    exporter_kind.as_deref().unwrap_or_default(),
                    "only otlp or none",
                ));
            }
        }
        if disabled {
            return Ok(Self::without_exporter(
                service_name,
                sampler,
                resource_attributes,
            ));
        }
        let protocol = protocol(&lookup)?;
        let endpoint = match lookup("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            Some(traces_endpoint) => Some(traces_endpoint.trim().to_owned()),
            None => lookup("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| match protocol {
                OtlpProtocol::Grpc => base.trim().to_owned(),
                // The signal's path is appended to the base URL (OTLP spec).
                OtlpProtocol::HttpProtobuf => {
                    format!("{}/v1/traces", base.trim().trim_end_matches('/'))
                }
            }),
        };
        let Some(endpoint) = endpoint else {
            return Ok(Self::without_exporter(
                service_name,
                sampler,
                resource_attributes,
            ));
        };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(ConfigError::new(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                &endpoint,
                "an http:// or https:// URL",
            ));
        }
        Ok(Self {
            service_name,
            exporter: Some(OtlpExporter { protocol, endpoint }),
            sampler,
            resource_attributes,
        })
    }

    fn without_exporter(
        service_name: String,
        sampler: Sampler,
        resource_attributes: Vec<KeyValue>,
    ) -> Self {
        Self {
            service_name,
            exporter: None,
            sampler,
            resource_attributes,
        }
    }
}

/// `OTEL_SDK_DISABLED`: `true` or `false` (unset: false).
fn sdk_disabled(lookup: &impl Fn(&str) -> Option<String>) -> Result<bool, ConfigError> {
    match lookup("OTEL_SDK_DISABLED") {
        None => Ok(false),
        Some(value) => match value.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ConfigError::new(
                "OTEL_SDK_DISABLED",
                &value,
                "true or false",
            )),
        },
    }
}

/// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`.
fn protocol(lookup: &impl Fn(&str) -> Option<String>) -> Result<OtlpProtocol, ConfigError> {
    let (protocol_name, protocol_text) = match lookup("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") {
        Some(text) => ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", Some(text)),
        None => (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            lookup("OTEL_EXPORTER_OTLP_PROTOCOL"),
        ),
    };
    match protocol_text.as_deref().map(str::trim) {
        None | Some("http/protobuf") => Ok(OtlpProtocol::HttpProtobuf),
        Some("grpc") => Ok(OtlpProtocol::Grpc),
        Some(other) => Err(ConfigError::new(
            protocol_name,
            other,
            "grpc or http/protobuf (http/json is not supported)",
        )),
    }
}

/// The samplers of the OpenTelemetry specification that need no remote service.
fn parse_sampler(name: Option<&str>, argument: Option<&str>) -> Result<Sampler, ConfigError> {
    let ratio = || -> Result<f64, ConfigError> {
        let Some(text) = argument else {
            return Ok(1.0);
        };
        match text.trim().parse::<f64>() {
            Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
            _ => Err(ConfigError::new(
                "OTEL_TRACES_SAMPLER_ARG",
                text,
                "a ratio between 0 and 1",
            )),
        }
    };
    let parent_based = |root: Sampler| Sampler::ParentBased(Box::new(root));
    Ok(match name.map(str::trim) {
        None | Some("parentbased_always_on") => parent_based(Sampler::AlwaysOn),
        Some("always_on") => Sampler::AlwaysOn,
        Some("always_off") => Sampler::AlwaysOff,
        Some("traceidratio") => Sampler::TraceIdRatioBased(ratio()?),
        Some("parentbased_always_off") => parent_based(Sampler::AlwaysOff),
        Some("parentbased_traceidratio") => parent_based(Sampler::TraceIdRatioBased(ratio()?)),
        Some(other) => {
            return Err(ConfigError::new(
                "OTEL_TRACES_SAMPLER",
                other,
                "always_on, always_off, traceidratio, parentbased_always_on, \
                 parentbased_always_off or parentbased_traceidratio",
            ));
        }
    })
}

/// `key1=value1,key2=value2`, values percent-encoded (W3C Baggage octets).
fn parse_resource_attributes(text: &str) -> Result<Vec<KeyValue>, String> {
    let mut attributes = Vec::new();
    for pair in text
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
    {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!("{pair:?} is not key=value"));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("{pair:?} has an empty key"));
        }
        let value =
            percent_decode(value.trim()).ok_or_else(|| format!("{pair:?} has a bad %-escape"))?;
        attributes.push(KeyValue::new(key.to_owned(), value));
    }
    Ok(attributes)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {

    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<TracingConfig, ConfigError> {
        TracingConfig::from_lookup("foco-test", &Env::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn nothing_set_exports_nothing() {
        let config = read(&[]).unwrap();
        assert_eq!(config.exporter, None);
        assert_eq!(config.service_name, "foco-test");
    }

    #[test]
    fn http_appends_the_traces_path_and_grpc_takes_the_base() {
        let http = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]).unwrap();
        assert_eq!(
            http.exporter,
            Some(OtlpExporter {
                protocol: OtlpProtocol::HttpProtobuf,
                endpoint: "http://collector:4318/v1/traces".to_owned()
            })
        );
        let grpc = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .unwrap();
        assert_eq!(
            grpc.exporter,
            Some(OtlpExporter {
                protocol: OtlpProtocol::Grpc,
                endpoint: "http://collector:4317".to_owned()
            })
        );
        let traces_only = read(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "https://collector/custom",
        )])
        .unwrap();
        assert_eq!(
            traces_only.exporter.unwrap().endpoint,
            "https://collector/custom"
        );
    }

    #[test]
    fn disabling_wins_over_an_endpoint() {
        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            let config = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), off]).unwrap();
            assert_eq!(config.exporter, None, "{off:?}");
        }
    }

    #[test]
    fn service_name_and_resource_attributes() {
        let config = read(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=prod,service.name=from-attrs,team=sms%20ops",
        )])
        .unwrap();
        assert_eq!(config.service_name, "from-attrs");
        assert!(
            config
                .resource_attributes
                .contains(&KeyValue::new("team", "sms ops"))
        );
        let named = read(&[
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"),
            ("OTEL_SERVICE_NAME", "explicit"),
        ])
        .unwrap();
        assert_eq!(named.service_name, "explicit");
    }

    #[test]
    fn samplers_parse_strictly() {
        let ratio = read(&[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ])
        .unwrap();
        assert!(matches!(ratio.sampler, Sampler::ParentBased(_)));
        for bad in [
            vec![("OTEL_TRACES_SAMPLER", "sometimes")],
            vec![
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ],
            vec![("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")],
            vec![("OTEL_RESOURCE_ATTRIBUTES", "novalue")],
            vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")],
        ] {
            let with_endpoint: Vec<(&str, &str)> = bad
                .iter()
                .copied()
                .chain(
                    (!bad.iter().any(|(name, _)| name.contains("ENDPOINT")))
                        .then_some(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")),
                )
                .collect();
            assert!(read(&with_endpoint).is_err(), "{bad:?}");
        }
    }
}
