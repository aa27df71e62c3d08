//! Docker's `filters` query parameter, in both forms clients send:
//! `{"name":{"web":true}}` (the docker CLI) and `{"name":["web"]}` (docker-py).

use std::collections::BTreeMap;

use serde_json::Value;

use super::ApiError;

/// Filter key -> accepted values. A filter with several values matches any of them;
/// several keys must all match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parse the (URL-decoded) JSON of `?filters=`. Keys are lowercased: Go's JSON
    /// decoding is case-insensitive and docker-py relies on it.
    pub fn parse(json: &str) -> Result<Filters, ApiError> {
        if json.trim().is_empty() {
            return Ok(Filters::default());
        }
        let v: Value = serde_json::from_str(json)
            .map_err(|e| ApiError::invalid(format!("invalid filter: {e}")))?;
        let Value::Object(map) = v else {
            return Err(ApiError::invalid("invalid filter: not an object"));
        };
        let mut out = BTreeMap::new();
        for (k, v) in map {
            let values: Vec<String> = match v {
                Value::Object(m) => m
                    .into_iter()
                    .filter(|(_, on)| is_true(on))
                    .map(|(k, _)| k)
                    .collect(),
                Value::Array(a) => a.into_iter().map(scalar).collect(),
                other => vec![scalar(other)],
            };
            out.insert(k.to_ascii_lowercase(), values);
        }
        Ok(Filters(out))
    }

    pub fn with(mut self, key: &str, value: &str) -> Filters {
        self.0
            .entry(key.to_string())
            .or_default()
            .push(value.to_string());
        self
    }

    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.0.get(key).map(Vec::as_slice)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// True when the key is absent or one of its values satisfies `f`.
    pub fn matches(&self, key: &str, f: impl Fn(&str) -> bool) -> bool {
        match self.0.get(key) {
            None => true,
            Some(vs) => vs.iter().any(|v| f(v)),
        }
    }

    /// A boolean filter (`_up-to-date`, `dangling`): None when absent.
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.0
            .get(key)
            .and_then(|vs| vs.first())
            .map(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }

    /// Refuse keys outside `allowed`, as Docker does (`invalid filter 'foo'`).
    pub fn validate(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(ApiError::invalid(format!("invalid filter '{k}'"))),
            None => Ok(()),
        }
    }
}

fn is_true(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        // docker-py has been seen to send Python's `True` as a string.
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn scalar(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// `label` filter values are `key` or `key=value`.
pub fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(filter),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_give_the_same_filters() {
        let cli =
            Filters::parse(r#"{"name":{"web":true},"service":{"x":true,"y":false}}"#).unwrap();
        let py = Filters::parse(r#"{"name":["web"],"service":["x"]}"#).unwrap();
        assert_eq!(cli, py);
        assert_eq!(cli.get("name"), Some(&["web".to_string()][..]));
    }

    #[test]
    fn keys_are_case_insensitive_and_bools_parse() {
        let f = Filters::parse(r#"{"_UP-TO-DATE":{"true":true},"Mode":["Replicated"]}"#).unwrap();
        assert_eq!(f.bool("_up-to-date"), Some(true));
        assert_eq!(f.get("mode"), Some(&["Replicated".to_string()][..]));
        let f = Filters::parse(r#"{"dangling":{"True":"True"}}"#).unwrap();
        assert_eq!(f.bool("dangling"), Some(true));
    }

    #[test]
    fn empty_bad_and_unknown() {
        assert_eq!(Filters::parse("").unwrap(), Filters::default());
        assert_eq!(Filters::parse("[1]").unwrap_err().status(), 400);
        let f = Filters::parse(r#"{"foo":["x"]}"#).unwrap();
        assert_eq!(
            f.validate(&["name"]).unwrap_err().to_string(),
            "invalid filter 'foo'"
        );
        assert!(f.matches("name", |_| false));
        assert!(!f.matches("foo", |v| v == "y"));
    }

    #[test]
    fn labels() {
        let labels: BTreeMap<_, _> = [("a".to_string(), "1".to_string())].into();
        assert!(label_matches(&labels, "a"));
        assert!(label_matches(&labels, "a=1"));
        assert!(!label_matches(&labels, "a=2"));
        assert!(!label_matches(&labels, "b"));
    }
}
