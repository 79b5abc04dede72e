//! Query strings, parsed by hand so that every problem is a 422 naming its
//! parameter (`{"include_inactive": "must be true or false"}`), which a
//! derived `Deserialize` cannot say.
//!
//! Unknown parameters are ignored; a known one given twice is refused
//! rather than silently picking one of the values.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::error::QueryPayloadError;
use actix_web::{FromRequest, HttpRequest, web};
use kernel::Violations;

use crate::body::violation;
use crate::error::ApiError;

/// The query string as decoded `name=value` pairs, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// Parses a raw query string. Decoding is lenient (bad percent escapes
    /// and invalid UTF-8 become replacement characters), so this only fails
    /// if the decoder itself does.
    pub(crate) fn parse(query: &str) -> Result<Self, ApiError> {
        web::Query::<Vec<(String, String)>>::from_query(query)
            .map(|q| Self(q.into_inner()))
            .map_err(|e| query_error(&e))
    }

    /// The one value of `name`; a second one is a violation.
    fn one(&self, name: &str, v: &mut Violations) -> Option<&str> {
        let mut values = self.0.iter().filter(|(k, _)| k == name).map(|(_, value)| value.as_str());
        let first = values.next()?;
        if values.next().is_some() {
            v.add(name, "is given more than once");
            return None;
        }
        Some(first)
    }

    /// `name` as text.
    pub(crate) fn text(&self, name: &str, v: &mut Violations) -> Option<String> {
        self.one(name, v).map(str::to_owned)
    }

    /// `name` as a boolean: `true`/`false` (any case) or `1`/`0`.
    pub(crate) fn flag(&self, name: &str, v: &mut Violations) -> Option<bool> {
        let raw = self.one(name, v)?;
        let parsed = match raw.trim() {
            "1" => Some(true),
            "0" => Some(false),
            s if s.eq_ignore_ascii_case("true") => Some(true),
            s if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        };
        if parsed.is_none() {
            v.add(name, "must be true or false");
        }
        parsed
    }

    /// `name` as a non-negative integer.
    pub(crate) fn number(&self, name: &str, v: &mut Violations) -> Option<u32> {
        let raw = self.one(name, v)?;
        let parsed = raw.trim().parse::<u32>().ok();
        if parsed.is_none() {
            v.add(name, "must be a non-negative integer");
        }
        parsed
    }
}

impl FromRequest for QueryParams {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::parse(req.query_string()))
    }
}

/// Runs `parse` over the request's query, turning its violations into one
/// 422 that names every bad parameter.
pub(crate) fn parse_with<T>(
    q: &QueryParams,
    parse: impl FnOnce(&QueryParams, &mut Violations) -> T,
) -> Result<T, ApiError> {
    let mut v = Violations::new();
    let out = parse(q, &mut v);
    v.into_result().map(|()| out).map_err(|v| ApiError::validation(&v))
}

/// The 422 for a query string that `web::Query` could not deserialise,
/// naming the parameter when serde does (`missing field`, `duplicate
/// field`), `query` otherwise.
pub(crate) fn query_error(e: &QueryPayloadError) -> ApiError {
    let message = match e {
        QueryPayloadError::Deserialize(inner) => inner.to_string(),
        other => other.to_string(),
    };
    let v = violation(".", &message);
    let renamed: Violations = {
        let mut out = Violations::new();
        for (field, problem) in v.iter() {
            out.add(if field == "body" { "query" } else { field }, problem);
        }
        out
    };
    ApiError::validation(&renamed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorCode, ErrorDetails};

    fn fields(e: &ApiError) -> Vec<(String, String)> {
        match &e.details {
            ErrorDetails::Fields(m) => m.clone().into_iter().collect(),
            ErrorDetails::Text(_) => Vec::new(),
        }
    }

    fn q(s: &str) -> QueryParams {
        QueryParams::parse(s).unwrap_or_default()
    }

    #[test]
    fn flags() {
        let parse = |s: &str| parse_with(&q(s), |q, v| q.flag("include_inactive", v));
        for (s, want) in [
            ("", None),
            ("include_inactive=true", Some(true)),
            ("include_inactive=TRUE", Some(true)),
            ("include_inactive=1", Some(true)),
            ("include_inactive=false", Some(false)),
            ("include_inactive=0", Some(false)),
            ("other=x&include_inactive=False", Some(false)),
            ("include_inactive=%74rue", Some(true)),
        ] {
            assert_eq!(parse(s).ok(), Some(want), "{s}");
        }
        for s in [
            "include_inactive=yes",
            "include_inactive=",
            "include_inactive",
            "include_inactive=2",
            "include_inactive=true&include_inactive=true",
            "include_inactive=%FF",
        ] {
            let e = parse(s).err();
            assert!(e.as_ref().is_some_and(|e| e.code == ErrorCode::ValidationError), "{s}");
            let f = e.as_ref().map(fields).unwrap_or_default();
            assert_eq!(f.len(), 1, "{s}");
            assert_eq!(f[0].0, "include_inactive", "{s}");
        }
    }

    #[test]
    fn numbers_and_text() {
        let parse = |s: &str| parse_with(&q(s), |q, v| (q.number("limit", v), q.text("action", v)));
        assert_eq!(parse("limit=5&action=login").ok(), Some((Some(5), Some("login".into()))));
        assert_eq!(parse("action=a%20b").ok(), Some((None, Some("a b".into()))));
        let e = parse("limit=abc&action=x&action=y").err();
        let f = e.as_ref().map(fields).unwrap_or_default();
        assert_eq!(
            f,
            vec![
                ("action".into(), "is given more than once".into()),
                ("limit".into(), "must be a non-negative integer".into()),
            ]
        );
        for bad in ["limit=-1", "limit=1.5", "limit=99999999999", "limit="] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_query_errors_name_the_field() {
        #[derive(Debug, serde::Deserialize)]
        #[expect(dead_code, reason = "only the error matters")]
        struct Need {
            n: u32,
        }
        let e = web::Query::<Need>::from_query("").err();
        let api = e.as_ref().map(query_error);
        assert_eq!(
            api.as_ref().map(fields),
            Some(vec![("n".to_owned(), "is required".to_owned())])
        );
        let e = web::Query::<Need>::from_query("n=x").err();
        let api = e.as_ref().map(query_error);
        assert_eq!(api.as_ref().map(|e| fields(e)[0].0.clone()), Some("query".to_owned()));
    }
}
