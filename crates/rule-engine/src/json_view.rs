//! The event's JSON as templates see it, converted as they read it: a template
//! that prints two fields of a large payload converts two fields, not the
//! payload. Lists and objects are views into the one shared document; strings,
//! numbers, booleans and nulls become minijinja values when they are read,
//! exactly as a whole conversion would make them.

use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};

/// One step from the document's root to a list or object inside it.
#[derive(Debug, Clone)]
enum Step {
    Field(Arc<str>),
    Index(usize),
}

/// A list or object of `root`, found by following `path`.
#[derive(Debug)]
pub(crate) struct JsonView {
    root: Arc<serde_json::Value>,
    path: Vec<Step>,
}

impl JsonView {
    /// `root` as a template value.
    pub(crate) fn value(root: Arc<serde_json::Value>) -> Value {
        Self::at(&root, &root, Vec::new())
    }

    fn at(root: &Arc<serde_json::Value>, value: &serde_json::Value, path: Vec<Step>) -> Value {
        match value {
            serde_json::Value::Null => Value::from(()),
            serde_json::Value::Bool(flag) => Value::from(*flag),
            serde_json::Value::Number(number) => {
                if let Some(integer) = number.as_i64() {
                    Value::from(integer)
                } else if let Some(integer) = number.as_u64() {
                    Value::from(integer)
                } else {
                    Value::from(number.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(text) => Value::from(text.as_str()),
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                Value::from_object(Self {
                    root: root.clone(),
                    path,
                })
            }
        }
    }

    fn node(&self) -> &serde_json::Value {
        self.path
            .iter()
            .try_fold(&*self.root, |node, step| match step {
                Step::Field(name) => node.get(&**name),
                Step::Index(index) => node.get(*index),
            })
            .unwrap_or(&serde_json::Value::Null)
    }

    fn child(&self, value: &serde_json::Value, step: Step) -> Value {
        let mut path = Vec::with_capacity(self.path.len() + 1);
        path.extend(self.path.iter().cloned());
        path.push(step);
        Self::at(&self.root, value, path)
    }
}

impl Object for JsonView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.node() {
            serde_json::Value::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match self.node() {
            serde_json::Value::Object(fields) => {
                let (name, value) = fields.get_key_value(key.as_str()?)?;
                Some(self.child(value, Step::Field(Arc::from(name.as_str()))))
            }
            serde_json::Value::Array(items) => {
                let index = key.as_usize()?;
                Some(self.child(items.get(index)?, Step::Index(index)))
            }
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.node() {
            serde_json::Value::Object(fields) => Enumerator::Values(
                fields
                    .keys()
                    .map(|name| Value::from(name.as_str()))
                    .collect(),
            ),
            serde_json::Value::Array(items) => Enumerator::Seq(items.len()),
            _ => Enumerator::Empty,
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        match self.node() {
            serde_json::Value::Object(fields) => Some(fields.len()),
            serde_json::Value::Array(items) => Some(items.len()),
            _ => Some(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value a template can reach renders as the whole conversion does.
    #[test]
    fn renders_as_a_whole_conversion_does() {
        let document = serde_json::json!({
            "order": "o-1",
            "total": 404.95,
            "count": 3,
            "big": 18446744073709551615u64,
            "negative": -7,
            "paid": true,
            "note": null,
            "customer": {"first_name": "Laura", "tags": ["vip", "mx"]},
            "items": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}],
            "empty": {},
            "none": [],
        });
        let templates = [
            "{{ event.order }} {{ event.total }} {{ event.count }} {{ event.big }} {{ event.negative }}",
            "{{ event.paid }} {{ event.note }} {{ event.note is none }}",
            "{{ event.customer.first_name }} {{ event.customer.tags[1] }} {{ event.customer.tags | join(',') }}",
            "{% for item in event.items %}{{ loop.index }}:{{ item.sku }}x{{ item.qty }};{% endfor %}",
            "{{ event.items | length }} {{ event.customer | length }} {{ event.empty | length }}",
            "{% for key, value in event.customer | items %}{{ key }}={{ value }};{% endfor %}",
            "{{ event.customer }} {{ event.items }} {{ event }}",
            "{{ event.items | map(attribute='sku') | join('+') }} {{ event.items | sum(attribute='qty') }}",
            "{% if event.empty %}full{% else %}empty{% endif %} {% if event.none %}x{% else %}y{% endif %} {% if event.items %}z{% endif %}",
            "{{ event.customer is mapping }} {{ event.items is sequence }} {{ event.items[0].sku }} {{ event.items[-1].sku }}",
            "{{ event['customer']['first_name'] }} {{ event.customer.missing is defined }}",
            "{{ event.items | first }} {{ event.customer.tags | reverse | join(',') }} {{ event.items | last }}",
        ];
        let environment = crate::template::environment();
        let lazy = minijinja::context! { event => JsonView::value(Arc::new(document.clone())) };
        let whole =
            minijinja::context! { event => Value::from(minijinja::value::Serde(&document)) };
        for source in templates {
            let template = environment.template_from_str(source).unwrap();
            assert_eq!(
                template.render(&lazy).unwrap(),
                template.render(&whole).unwrap(),
                "{source}"
            );
        }
    }

    #[test]
    fn a_missing_field_is_undefined_as_in_a_whole_conversion() {
        let environment = crate::template::environment();
        let document = serde_json::json!({"customer": {"first_name": "Laura"}});
        let template = environment
            .template_from_str("{{ event.customer.last_name }}")
            .unwrap();
        let lazy = template
            .render(minijinja::context! { event => JsonView::value(Arc::new(document.clone())) })
            .unwrap_err();
        let whole = template
            .render(
                minijinja::context! { event => Value::from(minijinja::value::Serde(&document)) },
            )
            .unwrap_err();
        assert_eq!(lazy.kind(), whole.kind());
    }
}
