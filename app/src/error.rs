//! The error every server function returns, as the user sees it.
//!
//! Each variant's message is written for the person at the screen. Internal failures are logged
//! once, where they are mapped (see `state::internal`), and reach the client only as
//! [`ApiError::Internal`], with no detail.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// On the wire every error is `{"error": "<kind>", "message": "<text for a person>"}`, plus
/// `retry_after_seconds` when throttled or busy and `attempts_left` (failures left before sign-in
/// slows down) on bad credentials; the browser turns it back into the variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(into = "WireError", from = "WireError")]
pub enum ApiError {
    #[error("sign in to continue")]
    Unauthenticated,
    #[error("your role does not allow this")]
    Forbidden,
    /// Deliberately vague: it must not tell whether the username exists. `attempts_left` is
    /// counted the same way for unknown names.
    #[error("invalid username or password")]
    BadCredentials { attempts_left: Option<u32> },
    #[error("too many failed sign-ins; try again in {}", seconds(*.0))]
    Throttled(u64),
    /// Every password-hashing slot is taken; nothing was checked.
    #[error("the server is busy checking other sign-ins; try again in a second")]
    Busy,
    /// The password was set by an admin: the user must change it before doing anything else.
    #[error("change your password before going on")]
    PasswordChangeRequired,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the server hit an internal error; it has been logged")]
    Internal,
    /// The request never reached the function, or its answer could not be read.
    #[error("{0}")]
    Transport(String),
}

/// The outcome of a form posted without JavaScript, kept for the page the browser is sent back
/// to: what it did (the server function's [`Said`](crate::api::Said) text) or why it was refused.
///
/// Leptos answers such a post with a redirect, carrying an error in the URL (`?__err=…`), which
/// anyone can craft into a link; the server (`server::flash`) moves it into the session instead,
/// and the next page load reads it from there, so what a page says came from this server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormFlash {
    /// The server function's path (`/api/maintenance/enable`): which form it belongs to.
    pub path: String,
    pub outcome: Result<String, ApiError>,
}

#[derive(Serialize, Deserialize)]
struct WireError {
    error: String,
    message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attempts_left: Option<u32>,
}

/// "1 second", "2 seconds".
pub fn seconds(n: u64) -> String {
    if n == 1 {
        "1 second".into()
    } else {
        format!("{n} seconds")
    }
}

impl From<ApiError> for WireError {
    fn from(e: ApiError) -> Self {
        let retry_after_seconds = match e {
            ApiError::Throttled(s) => Some(s),
            ApiError::Busy => Some(1),
            _ => None,
        };
        let attempts_left = match e {
            ApiError::BadCredentials { attempts_left } => attempts_left,
            _ => None,
        };
        WireError { error: e.kind().to_string(), message: e.to_string(), retry_after_seconds, attempts_left }
    }
}

impl From<WireError> for ApiError {
    fn from(w: WireError) -> Self {
        match w.error.as_str() {
            "unauthenticated" => ApiError::Unauthenticated,
            "forbidden" => ApiError::Forbidden,
            "bad_credentials" => ApiError::BadCredentials { attempts_left: w.attempts_left },
            "throttled" => ApiError::Throttled(w.retry_after_seconds.unwrap_or(1)),
            "busy" => ApiError::Busy,
            "password_change_required" => ApiError::PasswordChangeRequired,
            "bad_request" => ApiError::BadRequest(w.message),
            "not_found" => ApiError::NotFound(w.message),
            "conflict" => ApiError::Conflict(w.message),
            "internal" => ApiError::Internal,
            _ => ApiError::Transport(w.message),
        }
    }
}

impl ApiError {
    /// The machine-readable kind, stable across releases.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden => "forbidden",
            ApiError::BadCredentials { .. } => "bad_credentials",
            ApiError::Throttled(_) => "throttled",
            ApiError::Busy => "busy",
            ApiError::PasswordChangeRequired => "password_change_required",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Internal => "internal",
            ApiError::Transport(_) => "transport",
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Unauthenticated => 401,
            ApiError::Forbidden => 403,
            ApiError::BadCredentials { .. } => 401,
            ApiError::Throttled(_) => 429,
            ApiError::Busy => 429,
            ApiError::PasswordChangeRequired => 403,
            ApiError::BadRequest(_) => 400,
            ApiError::NotFound(_) => 404,
            ApiError::Conflict(_) => 409,
            ApiError::Internal => 500,
            ApiError::Transport(_) => 400,
        }
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    /// Errors raised before or after a server function body runs. On the server these are the
    /// request's arguments failing to decode (missing, malformed, overflowing, of the wrong
    /// type): every endpoint answers them here, in one place, as 400 naming the argument.
    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::Deserialization(m) => {
                let err = ApiError::BadRequest(describe_bad_arguments(&m, &given_arguments()));
                #[cfg(feature = "ssr")]
                let err = crate::state::respond(err);
                err
            }
            ServerFnErrorErr::MissingArg(name) => {
                let err = ApiError::BadRequest(format!("missing argument {}", shorten(&name)));
                #[cfg(feature = "ssr")]
                let err = crate::state::respond(err);
                err
            }
            other => ApiError::Transport(format!("request failed: {other}")),
        }
    }
}

/// The arguments a request carried (names and values, decoded), put in the request's extensions
/// by the server's argument guard so a decoding error can name the argument at fault.
#[derive(Debug, Clone, Default)]
pub struct RequestArguments(pub Vec<(String, String)>);

#[cfg(feature = "ssr")]
fn given_arguments() -> Vec<(String, String)> {
    leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<RequestArguments>().cloned())
        .map(|a| a.0)
        .unwrap_or_default()
}

#[cfg(not(feature = "ssr"))]
fn given_arguments() -> Vec<(String, String)> {
    Vec::new()
}

/// An argument name as the client sent it, safe to echo: at most 64 characters.
fn shorten(name: &str) -> String {
    let mut s: String = name.chars().take(64).collect();
    if name.chars().count() > 64 {
        s.push('…');
    }
    s
}

/// Turns a decoder's message into one naming the argument: the decoder names a missing field
/// itself; for a value that does not parse as a number or a boolean, the arguments whose
/// values do not parse as that kind are named.
pub fn describe_bad_arguments(message: &str, given: &[(String, String)]) -> String {
    let first_line = message.lines().next().unwrap_or("").trim();
    let first_line = first_line.strip_prefix("Args|").unwrap_or(first_line);
    if let Some(rest) = first_line.split("missing field `").nth(1) {
        let field = rest.split('`').next().unwrap_or("");
        return format!("missing argument {}", shorten(field));
    }
    let base = |k: &str| k.split('[').next().unwrap_or(k).to_string();
    if let Some(rest) = first_line.split("unknown variant `").nth(1) {
        let value = rest.split('`').next().unwrap_or("");
        let expected = first_line.split("expected ").nth(1).unwrap_or("a known value").replace('`', "");
        return match given.iter().find(|(_, v)| v == value) {
            Some((k, _)) => format!("invalid argument {}: expected {expected}", shorten(&base(k))),
            None => format!("invalid argument: expected {expected}"),
        };
    }
    let integer = ["invalid digit", "number too large", "number too small", "cannot parse integer"];
    let wants_integer = integer.iter().any(|p| first_line.contains(p));
    let wants_bool = first_line.contains("`true` or `false`");
    let mut suspects: Vec<String> = given
        .iter()
        .filter(|(_, v)| {
            (wants_integer && v.trim().parse::<i64>().is_err()) || (wants_bool && v.parse::<bool>().is_err())
        })
        .map(|(k, _)| shorten(&base(k)))
        .collect();
    suspects.dedup();
    let what = match (wants_integer, wants_bool) {
        (true, _) => "expected a whole number between -9223372036854775808 and 9223372036854775807",
        (_, true) => "expected true or false",
        _ => "",
    };
    match (suspects.as_slice(), what) {
        ([one], w) if !w.is_empty() => format!("invalid argument {one}: {w}"),
        ([], w) if !w.is_empty() => format!("invalid argument: {w}"),
        (many, w) if !w.is_empty() => format!("invalid argument (one of {}): {w}", many.join(", ")),
        _ => {
            let detail: String = first_line.chars().take(200).collect();
            format!("invalid arguments: {detail}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_errors_name_the_argument() {
        assert_eq!(describe_bad_arguments("missing field `scope`", &[]), "missing argument scope");
        let given = vec![
            ("actor".to_string(), "7".to_string()),
            ("page".to_string(), "18446744073709551615".to_string()),
        ];
        let m = describe_bad_arguments("number too large to fit in target type", &given);
        assert!(m.starts_with("invalid argument page:"), "{m}");
        let given = vec![("disabled".to_string(), "maybe".to_string())];
        let m = describe_bad_arguments("provided string was not `true` or `false`", &given);
        assert_eq!(m, "invalid argument disabled: expected true or false");
        let given = vec![("role".to_string(), "emperor".to_string())];
        let m =
            describe_bad_arguments("unknown variant `emperor`, expected one of `viewer`, `admin`", &given);
        assert_eq!(m, "invalid argument role: expected one of viewer, admin");
    }

    #[test]
    fn every_error_survives_the_wire_with_a_readable_message() {
        for e in [
            ApiError::Unauthenticated,
            ApiError::Forbidden,
            ApiError::BadCredentials { attempts_left: Some(2) },
            ApiError::BadCredentials { attempts_left: None },
            ApiError::Throttled(8),
            ApiError::Throttled(1),
            ApiError::Busy,
            ApiError::PasswordChangeRequired,
            ApiError::BadRequest("the reason is empty".into()),
            ApiError::NotFound("no such mirror".into()),
            ApiError::Conflict("maintenance window 7 is enabling".into()),
            ApiError::Internal,
            ApiError::Transport("request failed: could not decode".into()),
        ] {
            let json = serde_json::to_value(&e).unwrap();
            assert_eq!(json["message"], e.to_string());
            assert_eq!(json["error"], e.kind());
            assert_eq!(serde_json::from_value::<ApiError>(json).unwrap(), e);
        }
    }

    #[test]
    fn one_second_is_singular() {
        assert_eq!(ApiError::Throttled(1).to_string(), "too many failed sign-ins; try again in 1 second");
        assert_eq!(ApiError::Throttled(3).to_string(), "too many failed sign-ins; try again in 3 seconds");
    }
}
