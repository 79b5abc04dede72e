//! Request bodies: read with a hard size limit, then classified the way
//! SPEC §1 wants: 413 when too large, 400 when not JSON (or not declared as
//! JSON), 422 with a field → problem map when well-formed but wrong.
//!
//! Reading ([`Body`]) and parsing ([`Body::json`]) are separate so that a
//! handler can authenticate before it judges the body.

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt as _;
use futures_util::future::LocalBoxFuture;
use kernel::Violations;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::error::ApiError;

/// Largest accepted request body, in bytes (64 KiB).
pub(crate) const LIMIT: usize = 65_536;

/// A request body, read in full (at most [`LIMIT`] bytes) but not parsed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Body {
    bytes: Bytes,
    content_type: Option<HeaderValue>,
}

impl Body {
    /// A body as received; for tests.
    #[cfg(test)]
    pub(crate) fn new(bytes: &'static [u8], content_type: Option<&'static str>) -> Self {
        Self {
            bytes: Bytes::from_static(bytes),
            content_type: content_type.map(HeaderValue::from_static),
        }
    }

    /// The body as a `T`; the body is required.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        parse(self.content_type.as_ref(), &self.bytes, Presence::Required)
    }

    /// The body as a `T`, an empty body counting as `{}`.
    pub(crate) fn json_or_empty<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        parse(self.content_type.as_ref(), &self.bytes, Presence::Optional)
    }

    /// The body as an HTML form (`application/x-www-form-urlencoded`, the
    /// body of the OAuth endpoints); `None` when it is declared as anything
    /// else, is not UTF-8 or does not parse (a parameter given twice
    /// included), which those endpoints all answer alike.
    pub(crate) fn form<T: DeserializeOwned>(&self) -> Option<T> {
        let declared = self.content_type.as_ref()?.to_str().ok()?;
        let mime = declared.split(';').next().unwrap_or_default().trim();
        if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return None;
        }
        let text = std::str::from_utf8(&self.bytes).ok()?;
        actix_web::web::Query::<T>::from_query(text).ok().map(actix_web::web::Query::into_inner)
    }
}

/// Whether an endpoint needs a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// An empty body is a 400.
    Required,
    /// An empty (or blank) body means `{}`.
    Optional,
}

/// The size a request declares, when it declares one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// Whether the body is encoded (compressed): such bodies are refused rather
/// than inflated, so that a small request cannot make the server allocate
/// a large one.
fn is_encoded(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_ENCODING).is_some_and(|v| {
        !v.to_str().is_ok_and(|s| s.trim().is_empty() || s.trim().eq_ignore_ascii_case("identity"))
    })
}

impl FromRequest for Body {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let headers = req.headers();
        let content_type = headers.get(header::CONTENT_TYPE).cloned();
        let declared = declared_length(headers);
        let encoded = is_encoded(headers);
        let mut payload = payload.take();
        Box::pin(async move {
            if declared.is_some_and(|n| n > LIMIT as u64) {
                return Err(ApiError::payload_too_large(LIMIT));
            }
            let capacity = declared.map_or(0, |n| usize::try_from(n).unwrap_or(LIMIT));
            let mut buf = BytesMut::with_capacity(capacity.min(LIMIT));
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|_| {
                    ApiError::bad_request("The request body could not be read completely")
                })?;
                if buf.len() + chunk.len() > LIMIT {
                    return Err(ApiError::payload_too_large(LIMIT));
                }
                buf.extend_from_slice(&chunk);
            }
            if encoded && !buf.is_empty() {
                return Err(ApiError::bad_request("Compressed request bodies are not supported"));
            }
            Ok(Self { bytes: buf.freeze(), content_type })
        })
    }
}

/// Whether a `Content-Type` names JSON: `application/json` or any
/// `type/subtype+json`, parameters allowed.
pub(crate) fn is_json_content_type(value: &HeaderValue) -> bool {
    let Ok(s) = value.to_str() else {
        return false;
    };
    let essence = s.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let (kind, subtype) = (kind.trim(), subtype.trim());
    if kind.is_empty() || subtype.is_empty() {
        return false;
    }
    (kind.eq_ignore_ascii_case("application") && subtype.eq_ignore_ascii_case("json"))
        || (subtype.len() > 5
            && subtype.get(subtype.len() - 5..).is_some_and(|s| s.eq_ignore_ascii_case("+json")))
}

/// Parses a body: the classification rules of SPEC §1, pure.
pub(crate) fn parse<T: DeserializeOwned>(
    content_type: Option<&HeaderValue>,
    bytes: &[u8],
    presence: Presence,
) -> Result<T, ApiError> {
    let first = bytes.iter().copied().find(|b| !b.is_ascii_whitespace());
    let Some(first) = first else {
        return match presence {
            Presence::Optional => decode(b"{}"),
            Presence::Required => {
                Err(ApiError::bad_request("A JSON object is required as the request body"))
            }
        };
    };
    if content_type.is_some_and(|ct| !is_json_content_type(ct)) {
        return Err(ApiError::bad_request("Content-Type must be application/json"));
    }
    if first != b'{' {
        // Serde would happily build a struct from an array; only objects
        // are bodies. Valid JSON of another kind is a 422, anything else 400.
        return Err(match serde_json::from_slice::<IgnoredAny>(bytes) {
            Ok(_) => ApiError::invalid_field("body", "must be a JSON object"),
            Err(e) => not_json(&e),
        });
    }
    decode(bytes)
}

/// Deserialises a body that starts with `{`.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => match de.end() {
            Ok(()) => Ok(value),
            Err(e) => Err(not_json(&e)),
        },
        Err(e) => {
            let inner = e.inner();
            if inner.classify() != serde_json::error::Category::Data {
                return Err(not_json(inner));
            }
            // A type error can come before a syntax error further on; the
            // body is only "well-formed but wrong" if it is JSON at all.
            if let Err(syntax) = serde_json::from_slice::<IgnoredAny>(bytes) {
                return Err(not_json(&syntax));
            }
            let first = violation(&e.path().to_string(), &inner.to_string());
            Err(ApiError::validation(&every_violation::<T>(bytes, first)))
        }
    }
}

/// How many wrong fields one answer names at most: a body of thousands of
/// wrong fields costs a bounded number of passes.
const MAX_REPORTED: usize = 32;

/// Stand-ins tried, in turn, for a field already reported (or required
/// and missing), so that deserialising goes on to the fields after it:
/// one of them is valid for the usual field types.
fn stand_ins() -> [serde_json::Value; 6] {
    use serde_json::Value;
    [
        Value::Null,
        Value::String(String::new()),
        Value::from(0),
        Value::Bool(false),
        Value::Object(serde_json::Map::new()),
        Value::Array(Vec::new()),
    ]
}

/// Every field of `bytes` (a JSON object that failed as a `T` with
/// `first`) that is wrong, not only the first: serde stops at the first
/// bad field, so each one found is replaced by a stand-in of another type
/// (see [`stand_ins`]) and the object is tried again, until it passes or
/// [`MAX_REPORTED`] problems are known. Problems caused by a stand-in are
/// not reported; a field whose stand-ins all fail ends the search.
fn every_violation<T: DeserializeOwned>(bytes: &[u8], first: Violations) -> Violations {
    use std::collections::BTreeMap;
    let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice(bytes) else {
        return first;
    };
    let mut found = first;
    // The fields replaced so far, and how many stand-ins each has used.
    let mut replaced: BTreeMap<String, usize> = BTreeMap::new();
    let stand_ins = stand_ins();
    let rounds = MAX_REPORTED * stand_ins.len();
    for _ in 0..rounds {
        let attempt = serde_json::Value::Object(object.clone());
        let Err(e) = serde_path_to_error::deserialize::<_, T>(attempt) else { break };
        let (path, message) = (e.path().to_string(), e.inner().to_string());
        let Some(field) = top_level_field(&path, &message) else {
            // A problem with the object as a whole: nothing to step past.
            break;
        };
        let used = replaced.entry(field.clone()).or_insert(0);
        if *used == 0 {
            for (name, problem) in violation(&path, &message).iter() {
                found.add(name, problem);
            }
        }
        let Some(stand_in) = stand_ins.get(*used) else { break };
        *used += 1;
        object.insert(field, stand_in.clone());
        if replaced.len() > MAX_REPORTED {
            break;
        }
    }
    found
}

/// The top-level field a data error at `path` is about: the first segment
/// of the path, or the field a "missing field" error at the top names.
fn top_level_field(path: &str, message: &str) -> Option<String> {
    if path == "." {
        return quoted(without_position(message), "missing field `").map(str::to_owned);
    }
    let end = path.find(['.', '[']).unwrap_or(path.len());
    Some(path[..end].to_owned()).filter(|f| !f.is_empty())
}

fn not_json(e: &serde_json::Error) -> ApiError {
    ApiError::bad_request(format!(
        "The request body is not valid JSON: {}",
        without_position(&e.to_string())
    ))
}

/// serde_json appends " at line L column C"; the field names say more.
fn without_position(msg: &str) -> &str {
    match msg.rsplit_once(" at line ") {
        Some((head, tail))
            if tail.split_once(" column ").is_some_and(|(l, c)| is_number(l) && is_number(c)) =>
        {
            head
        }
        _ => msg,
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The field and problem of a data error at `path` (`.` is the top level).
pub(crate) fn violation(path: &str, message: &str) -> Violations {
    let msg = without_position(message);
    let path = if path == "." { "" } else { path };
    let join = |name: &str| {
        if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") }
    };
    if let Some(name) = quoted(msg, "missing field `") {
        return Violations::one(join(name), "is required");
    }
    if let Some(name) = quoted(msg, "duplicate field `") {
        return Violations::one(join(name), "is given more than once");
    }
    let field = if path.is_empty() { "body" } else { path };
    let problem = match msg.rsplit_once(", expected ") {
        Some((head, expected))
            if head.starts_with("invalid type: ") || head.starts_with("invalid value: ") =>
        {
            format!("must be {}", human(expected))
        }
        _ => msg.to_owned(),
    };
    Violations::one(field, problem)
}

/// The name between `` prefix` `` and the next backtick.
fn quoted<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    msg.strip_prefix(prefix)?.split('`').next()
}

/// Serde's names of expected types, in words.
fn human(expected: &str) -> &str {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
        "f32" | "f64" => "a number",
        "a boolean" | "a string" => expected,
        e if e.starts_with("struct ") || e.starts_with("a map") => "an object",
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorCode, ErrorDetails};
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Login {
        username: String,
        password: String,
        app: Option<String>,
        count: Option<u32>,
        flag: Option<bool>,
    }

    #[derive(Debug, Deserialize, PartialEq, Default)]
    struct Opt {
        app: Option<String>,
    }

    const JSON: Option<&'static str> = Some("application/json");

    fn login(ct: Option<&'static str>, body: &'static [u8]) -> Result<Login, ApiError> {
        Body::new(body, ct).json()
    }

    fn fields(e: &ApiError) -> Vec<(String, String)> {
        match &e.details {
            ErrorDetails::Fields(m) => m.clone().into_iter().collect(),
            ErrorDetails::Text(_) => Vec::new(),
        }
    }

    fn code(r: Result<Login, ApiError>) -> ErrorCode {
        r.err().map_or(ErrorCode::InternalError, |e| e.code)
    }

    #[test]
    fn good_bodies_parse_and_unknown_fields_are_ignored() {
        let l = login(JSON, br#"{"username":"a","password":"b","extra":[1,{"x":2}]}"#);
        assert!(l.is_ok_and(|l| l.username == "a" && l.app.is_none()));
        let l = login(None, br#" {"username":"a","password":"b","app":null} "#);
        assert!(l.is_ok());
        let l =
            login(Some("Application/JSON; charset=utf-8"), br#"{"username":"a","password":"b"}"#);
        assert!(l.is_ok());
        let l = login(Some("application/vnd.api+json"), br#"{"username":"a","password":"b"}"#);
        assert!(l.is_ok());
    }

    #[test]
    fn not_json_is_400() {
        for body in [
            &b"hello"[..],
            b"{",
            b"{\"username\":",
            b"{\"username\":\"a\",}",
            b"{\"username\":\"a\"} trailing",
            b"\xff\xfe",
            b"{\"username\":\"\xff\"}",
            b"[1,2",
        ] {
            let r: Result<Login, _> = parse(None, body, Presence::Required);
            assert_eq!(code(r), ErrorCode::BadRequest, "{body:?}");
        }
    }

    #[test]
    fn a_type_error_before_a_syntax_error_is_still_400() {
        assert_eq!(code(login(JSON, br#"{"username": 5, "password": "#)), ErrorCode::BadRequest);
    }

    #[test]
    fn wrong_content_type_is_400() {
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "json",
            "application/jsonx",
            "/json",
        ] {
            let r = login(Some(ct), br#"{"username":"a","password":"b"}"#);
            assert_eq!(code(r), ErrorCode::BadRequest, "{ct}");
        }
    }

    #[test]
    fn an_empty_required_body_is_400() {
        assert_eq!(code(login(JSON, b"")), ErrorCode::BadRequest);
        assert_eq!(code(login(None, b"  \n")), ErrorCode::BadRequest);
    }

    #[test]
    fn an_empty_optional_body_is_an_empty_object() {
        for (ct, body) in [(None, &b""[..]), (JSON, b" \r\n\t"), (Some("text/plain"), b"")] {
            let r: Result<Opt, _> =
                parse(ct.map(HeaderValue::from_static).as_ref(), body, Presence::Optional);
            assert!(r.is_ok_and(|o| o == Opt::default()));
        }
        let r: Result<Opt, _> = Body::new(br#"{"app":"web"}"#, JSON).json_or_empty();
        assert!(r.is_ok_and(|o| o.app.as_deref() == Some("web")));
        let r: Result<Opt, _> = Body::new(b"nope", JSON).json_or_empty();
        assert!(r.is_err_and(|e| e.code == ErrorCode::BadRequest));
    }

    #[test]
    fn a_json_value_that_is_not_an_object_is_422() {
        for body in [&b"[\"a\",\"b\"]"[..], b"\"x\"", b"42", b"null", b"true"] {
            let e = login(JSON, body).err();
            assert!(e.as_ref().is_some_and(|e| e.code == ErrorCode::ValidationError));
            assert_eq!(
                e.as_ref().map(fields),
                Some(vec![("body".into(), "must be a JSON object".into())])
            );
        }
    }

    #[test]
    fn a_missing_field_is_422_under_its_name() {
        let e = login(JSON, br#"{"username":"a"}"#).err();
        assert!(e.as_ref().is_some_and(|e| e.code == ErrorCode::ValidationError));
        assert_eq!(e.as_ref().map(fields), Some(vec![("password".into(), "is required".into())]));
    }

    #[test]
    fn every_wrong_field_is_named() {
        let pairs = |body: &'static [u8]| login(JSON, body).err().map(|e| fields(&e));
        let s = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(
            pairs(br#"{"username": 123, "password": ["x"]}"#),
            Some(vec![s("password", "must be a string"), s("username", "must be a string")])
        );
        // Wrong types and missing fields together, after a good field.
        assert_eq!(
            pairs(br#"{"app": "web", "count": -1, "flag": "yes"}"#),
            Some(vec![
                s("count", "must be a non-negative integer"),
                s("flag", "must be a boolean"),
                s("password", "is required"),
                s("username", "is required"),
            ])
        );
        assert_eq!(pairs(br#"{}"#).map(|f| f.len()), Some(2), "both required fields");
        // A stand-in never shows up as a problem of its own.
        assert_eq!(
            pairs(br#"{"username": "a", "password": {"b": 1}}"#),
            Some(vec![s("password", "must be a string")])
        );
    }

    #[test]
    fn a_body_of_many_wrong_fields_names_a_bounded_number() {
        #[derive(Debug, Deserialize)]
        #[expect(dead_code, reason = "only the failure to parse matters")]
        struct Wide(std::collections::BTreeMap<String, u8>);
        let mut body = String::from("{");
        for i in 0..5000 {
            body.push_str(&format!("\"f{i}\": \"x\","));
        }
        body.push_str("\"last\": 1}");
        let bytes: &'static [u8] = Box::leak(body.into_bytes().into_boxed_slice());
        let e = Body::new(bytes, JSON).json::<Wide>().err();
        assert!(e.as_ref().is_some_and(|e| e.code == ErrorCode::ValidationError));
        assert!(e.map(|e| fields(&e).len()).is_some_and(|n| (1..=MAX_REPORTED + 1).contains(&n)));
    }

    #[test]
    fn a_wrong_type_is_422_under_its_path() {
        let cases: [(&[u8], &str, &str); 6] = [
            (br#"{"username":5,"password":"b"}"#, "username", "must be a string"),
            (br#"{"username":"a","password":"b","app":[]}"#, "app", "must be a string"),
            (
                br#"{"username":"a","password":"b","count":-1}"#,
                "count",
                "must be a non-negative integer",
            ),
            (
                br#"{"username":"a","password":"b","count":"3"}"#,
                "count",
                "must be a non-negative integer",
            ),
            (
                br#"{"username":"a","password":"b","count":1.5}"#,
                "count",
                "must be a non-negative integer",
            ),
            (br#"{"username":"a","password":"b","flag":"yes"}"#, "flag", "must be a boolean"),
        ];
        for (body, field, problem) in cases {
            let r: Result<Login, _> = parse(None, body, Presence::Required);
            let e = r.err();
            assert!(e.as_ref().is_some_and(|e| e.code == ErrorCode::ValidationError));
            assert_eq!(
                e.as_ref().map(fields),
                Some(vec![(field.into(), problem.into())]),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        let bytes: &'static [u8] = Box::leak(deep.into_bytes().into_boxed_slice());
        // Well-formed, just deep, and ignored: the missing fields are the problem.
        assert_eq!(code(login(JSON, bytes)), ErrorCode::ValidationError);
        let arr: &'static [u8] = Box::leak("[".repeat(100_000).into_bytes().into_boxed_slice());
        assert_eq!(code(login(JSON, arr)), ErrorCode::BadRequest);
    }

    #[test]
    fn violations_from_serde_messages() {
        let v = violation(".", "missing field `x` at line 1 column 2");
        assert_eq!(v, Violations::one("x", "is required"));
        let v = violation("outer", "missing field `x`");
        assert_eq!(v, Violations::one("outer.x", "is required"));
        let v = violation(".", "duplicate field `a` at line 1 column 9");
        assert_eq!(v, Violations::one("a", "is given more than once"));
        let v = violation("a", "unknown variant `x`, expected `y`");
        assert_eq!(v, Violations::one("a", "unknown variant `x`, expected `y`"));
    }

    #[test]
    fn content_types() {
        let yes = [
            "application/json",
            "APPLICATION/JSON",
            "application/json;charset=UTF-8",
            "application/problem+json",
            "text/x+json",
        ];
        for ct in yes {
            assert!(is_json_content_type(&HeaderValue::from_static(ct)), "{ct}");
        }
        let no = [
            "text/plain",
            "application/jsonp",
            "+json",
            "application/+json",
            "",
            "application",
            "multipart/form-data",
        ];
        for ct in no {
            assert!(!is_json_content_type(&HeaderValue::from_static(ct)), "{ct}");
        }
    }

    #[test]
    fn header_helpers() {
        let mut h = HeaderMap::new();
        assert_eq!(declared_length(&h), None);
        assert!(!is_encoded(&h));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("70000"));
        assert_eq!(declared_length(&h), Some(70_000));
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("identity"));
        assert!(!is_encoded(&h));
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(is_encoded(&h));
    }
}
