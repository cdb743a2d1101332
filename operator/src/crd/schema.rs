//! Schema pieces the derive cannot express: Kubernetes quantities and
//! int-or-string values, which YAML writers give as numbers or strings.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};
use std::borrow::Cow;

/// A Kubernetes resource quantity (`500m`, `2`, `1Gi`), accepted as a number or
/// a string and kept as the string the API server stores.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Quantity(pub String);

impl Quantity {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn to_k8s(&self) -> k8s_openapi::apimachinery::pkg::api::resource::Quantity {
        k8s_openapi::apimachinery::pkg::api::resource::Quantity(self.0.clone())
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(i64),
            Float(f64),
        }
        Ok(Self(match Raw::deserialize(d)? {
            Raw::Text(t) => t,
            Raw::Int(i) => i.to_string(),
            Raw::Float(f) => f.to_string(),
        }))
    }
}

impl JsonSchema for Quantity {
    fn schema_name() -> Cow<'static, str> {
        "Quantity".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A resource quantity such as 500m, 2, 512Mi or 1Gi.",
            "x-kubernetes-int-or-string": true
        })
    }
}

/// Schema of a field holding a count or a percentage (`2`, `"50%"`).
pub fn int_or_string(_: &mut SchemaGenerator) -> Schema {
    // maxLength bounds the cost of CEL rules on the value. Not nullable: an
    // explicit null is pruned and the default applies (a stored null would not
    // deserialize).
    json_schema!({ "x-kubernetes-int-or-string": true, "maxLength": 8, "nullable": false })
}

/// The number a count-or-percentage resolves to for `total`, rounded down
/// (as Kubernetes does for `maxUnavailable`). `None` when the text is not a
/// percentage or a count.
pub fn scaled_value(value: &IntOrString, total: i32) -> Option<i32> {
    match value {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(text) => {
            let percent: i64 = text.strip_suffix('%')?.parse().ok()?;
            Some((i64::from(total) * percent / 100) as i32)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_accept_numbers_and_strings() {
        let q: Vec<Quantity> = serde_json::from_str(r#"["512Mi", 2, 0.5]"#).unwrap();
        assert_eq!(
            q,
            [Quantity::new("512Mi"), Quantity::new("2"), Quantity::new("0.5")]
        );
    }

    #[test]
    fn percentages_round_down() {
        let half = IntOrString::String("50%".into());
        assert_eq!(scaled_value(&half, 10), Some(5));
        assert_eq!(scaled_value(&half, 3), Some(1));
        assert_eq!(scaled_value(&half, 1), Some(0));
        assert_eq!(scaled_value(&IntOrString::Int(3), 10), Some(3));
        assert_eq!(scaled_value(&IntOrString::String("half".into()), 10), None);
    }
}
