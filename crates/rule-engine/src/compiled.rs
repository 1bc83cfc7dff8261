//! A rule compiled once per version: its CEL program and its templates.

use foco_proto::v1::Rule;
use minijinja::Environment;

use super::condition::Condition;
use super::template::{self, TemplateError};
use super::{EventInputs, MAX_BODY_CHARS, RuleError};

enum Recipient {
    Fixed(String),
    Template { template_name: String },
}

pub struct CompiledRule {
    condition: Option<Condition>,
    templates: Environment<'static>,
    recipients: Vec<Recipient>,
}

pub struct Rendered {
    pub recipients: Vec<String>,
    pub body: String,
}

const BODY: &str = "body";

impl CompiledRule {
    pub fn compile(rule: &Rule) -> Result<Self, RuleError> {
        let condition = if rule.when.trim().is_empty() {
            None
        } else {
            Some(Condition::compile(&rule.when).map_err(RuleError::ConditionCompile)?)
        };
        let mut templates = template::environment();
        templates
            .add_template_owned(BODY, rule.body.clone())
            .map_err(|error| RuleError::TemplateCompile {
                field: BODY.to_owned(),
                message: error.to_string(),
            })?;
        let mut recipients = Vec::with_capacity(rule.to.len());
        for (index, recipient) in rule.to.iter().enumerate() {
            if template::is_template(recipient) {
                let template_name = format!("to[{index}]");
                templates
                    .add_template_owned(template_name.clone(), recipient.clone())
                    .map_err(|error| RuleError::TemplateCompile {
                        field: template_name.clone(),
                        message: error.to_string(),
                    })?;
                recipients.push(Recipient::Template { template_name });
            } else {
                recipients.push(Recipient::Fixed(recipient.trim().to_owned()));
            }
        }
        Ok(Self {
            condition,
            templates,
            recipients,
        })
    }

    /// `Ok(None)` when the condition is false.
    pub fn evaluate(&self, inputs: &EventInputs) -> Result<Option<Rendered>, RuleError> {
        if let Some(condition) = &self.condition
            && !condition.matches(inputs)?
        {
            return Ok(None);
        }
        let body = self.render(BODY, inputs)?;
        let body = body.trim().to_owned();
        if body.is_empty() {
            return Err(RuleError::EmptyBody);
        }
        let chars = body.chars().count();
        if chars > MAX_BODY_CHARS {
            return Err(RuleError::BodyTooLong { chars });
        }
        let mut recipients: Vec<String> = Vec::with_capacity(self.recipients.len());
        for (index, recipient) in self.recipients.iter().enumerate() {
            let rendered = match recipient {
                Recipient::Fixed(number) => number.clone(),
                Recipient::Template { template_name } => {
                    self.render(template_name, inputs)?.trim().to_owned()
                }
            };
            if rendered.is_empty() {
                return Err(RuleError::EmptyRecipient { index });
            }
            if !recipients.contains(&rendered) {
                recipients.push(rendered);
            }
        }
        Ok(Some(Rendered { recipients, body }))
    }

    fn render(&self, name: &str, inputs: &EventInputs) -> Result<String, RuleError> {
        let to_error = |source: TemplateError| RuleError::Template {
            field: name.to_owned(),
            source,
        };
        let template = self
            .templates
            .get_template(name)
            .map_err(|error| to_error(error.into()))?;
        template
            .render(inputs.template_context.clone())
            .map_err(|error| to_error(error.into()))
    }
}
