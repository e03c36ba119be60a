//! Kubernetes label selectors (`matchLabels` / `matchExpressions`) as plain data, with the matching
//! rules of `metav1.LabelSelectorAsSelector`: every term must hold, and a selector with no terms
//! selects everything.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// One label selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// Labels that must be present with exactly these values.
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements.
    pub match_expressions: Vec<Requirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// How the label is compared.
    pub operator: Operator,
    /// The values for `In` and `NotIn`.
    pub values: Vec<String>,
}

/// A `matchExpressions` operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    /// The label is present with one of the values.
    In,
    /// The label is absent or has none of the values.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
    /// An operator Kubernetes does not define. Kubernetes would refuse to build such a selector, so
    /// it matches nothing rather than something unintended.
    Unknown(String),
}

impl Selector {
    /// Converts a Kubernetes selector. Operators are case-sensitive, as in Kubernetes.
    pub fn from_k8s(sel: &LabelSelector) -> Selector {
        let match_expressions = sel
            .match_expressions
            .iter()
            .flatten()
            .map(|r| Requirement {
                key: r.key.clone(),
                operator: match r.operator.as_str() {
                    "In" => Operator::In,
                    "NotIn" => Operator::NotIn,
                    "Exists" => Operator::Exists,
                    "DoesNotExist" => Operator::DoesNotExist,
                    other => Operator::Unknown(other.to_owned()),
                },
                values: r.values.clone().unwrap_or_default(),
            })
            .collect();
        Selector { match_labels: sel.match_labels.clone().unwrap_or_default(), match_expressions }
    }

    /// Whether the selector holds an operator Kubernetes does not define.
    pub fn unknown_operator(&self) -> Option<&str> {
        self.match_expressions.iter().find_map(|r| match &r.operator {
            Operator::Unknown(op) => Some(op.as_str()),
            _ => None,
        })
    }

    /// Whether an object with these labels is selected.
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.holds(labels))
    }
}

impl Requirement {
    fn holds(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Unknown(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn empty_selector_selects_everything() {
        let s = Selector::from_k8s(&LabelSelector::default());
        assert!(s.selects(&labels(&[])));
        assert!(s.selects(&labels(&[("a", "b")])));
    }

    #[test]
    fn labels_and_expressions_must_all_hold() {
        let s = Selector::from_k8s(&LabelSelector {
            match_labels: Some(labels(&[("zone", "a")])),
            match_expressions: Some(vec![
                expr("role", "In", &["lb", "edge"]),
                expr("tier", "NotIn", &["db"]),
                expr("ready", "Exists", &[]),
                expr("drain", "DoesNotExist", &[]),
            ]),
        });
        let ok = labels(&[("zone", "a"), ("role", "lb"), ("ready", "")]);
        assert!(s.selects(&ok));
        let mut wrong_zone = ok.clone();
        wrong_zone.insert("zone".into(), "b".into());
        assert!(!s.selects(&wrong_zone));
        let mut wrong_role = ok.clone();
        wrong_role.insert("role".into(), "db".into());
        assert!(!s.selects(&wrong_role));
        let mut excluded_tier = ok.clone();
        excluded_tier.insert("tier".into(), "db".into());
        assert!(!s.selects(&excluded_tier));
        let mut draining = ok.clone();
        draining.insert("drain".into(), "yes".into());
        assert!(!s.selects(&draining));
        let mut not_ready = ok;
        not_ready.remove("ready");
        assert!(!s.selects(&not_ready));
    }

    #[test]
    fn unknown_operator_selects_nothing() {
        let s = Selector::from_k8s(&LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![expr("role", "in", &["lb"])]),
        });
        assert_eq!(s.unknown_operator(), Some("in"));
        assert!(!s.selects(&labels(&[("role", "lb")])));
    }
}
