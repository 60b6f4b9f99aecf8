//! Request guards that sit in front of the Leptos routes.
//!
//! - **Cross-origin refusal (CSRF).** Every state-changing request (any method but GET, HEAD,
//!   OPTIONS) must come from our own origin: its `Origin` header (or, without one, its `Referer`)
//!   must match the configured public URL, or, when none is configured, the request's own
//!   `Host`. A browser's `Sec-Fetch-Site: cross-site`/`same-site` is refused too. Requests with
//!   none of these headers come from scripts (curl, upgrade hooks), which carry no ambient
//!   browser cookies, so they pass to the role checks like any other. SameSite=Lax cookies are a
//!   second line.
//! - **JSON bodies.** Server functions declare the form encoding (so plain HTML forms work
//!   without JavaScript); a POST to `/api/…` with `Content-Type: application/json` is re-encoded
//!   to that form encoding here, so scripts can send JSON to the same endpoints.
//! - **Arguments are remembered.** For `/api/` requests the decoded argument pairs (query string
//!   or form body) are put in the request's extensions (`app::error::RequestArguments`), so an
//!   argument that fails to decode is answered 400 naming it (`ApiError::from_server_fn_error`)
//!   for every server function alike. Form bodies are limited like JSON ones. An argument with a
//!   NUL character is refused here (400 naming it): no argument may hold one, and Postgres
//!   cannot store or compare text containing it.
//! - **Pages need a session.** A GET for a page without a valid signed-in session is redirected
//!   to `/login?next=…`; server functions answer 401 themselves.

use app::state::AppState;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use tower_sessions::Session;

/// Largest JSON body accepted on `/api/`.
const MAX_JSON_BODY: usize = 1 << 20;

#[derive(Clone)]
pub struct Guards {
    /// `scheme://host[:port]` of the configured public URL, if any.
    pub public_origin: Option<String>,
    pub state: AppState,
}

fn refuse(status: StatusCode, kind: &str, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": kind, "message": message }))).into_response()
}

fn origin_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    Some(u.origin().ascii_serialization())
}

/// Whether a state-changing request comes from our own origin (see the module docs).
pub fn same_origin(headers: &HeaderMap, public_origin: Option<&str>) -> bool {
    let get = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site == "cross-site" || site == "same-site" {
            return false;
        }
    }
    let claimed = match (get(header::ORIGIN), get(header::REFERER)) {
        (Some("null"), _) => return false,
        (Some(o), _) => origin_of(o),
        (None, Some(r)) => origin_of(r),
        (None, None) => return true,
    };
    let Some(claimed) = claimed else { return false };
    match public_origin {
        Some(expected) => claimed == expected,
        None => match get(header::HOST) {
            Some(host) => claimed == format!("http://{host}") || claimed == format!("https://{host}"),
            None => false,
        },
    }
}

pub async fn refuse_cross_origin(State(guards): State<Guards>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !same_origin(req.headers(), guards.public_origin.as_deref()) {
        tracing::warn!(http.method = %req.method(), http.path = %req.uri().path(), "refused a cross-origin request");
        return refuse(StatusCode::FORBIDDEN, "forbidden", "cross-origin request refused");
    }
    next.run(req).await
}

pub async fn json_to_form(req: Request, next: Next) -> Response {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
    if !(is_json && req.method() == Method::POST && req.uri().path().starts_with("/api/")) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let bytes = match to_bytes(body, MAX_JSON_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, "bad_request", "the request body is too large")
        }
    };
    let value: serde_json::Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Object(Default::default())
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    &format!("the body is not valid JSON: {e}"),
                )
            }
        }
    };
    let serde_json::Value::Object(mut map) = value else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the JSON body must be an object of named arguments",
        );
    };
    // Absent and null mean the same to an optional argument; the form encoding has no null.
    map.retain(|_, v| !v.is_null());
    let form = match serde_qs::to_string(&map) {
        Ok(f) => f,
        Err(e) => {
            return refuse(StatusCode::BAD_REQUEST, "bad_request", &format!("unsupported JSON body: {e}"))
        }
    };
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
    parts.headers.remove(header::CONTENT_LENGTH);
    next.run(Request::from_parts(parts, Body::from(form))).await
}

/// Records the `/api/` request's argument pairs in its extensions (see the module docs).
pub async fn remember_arguments(req: Request, next: Next) -> Response {
    let pairs = |text: &[u8]| -> Vec<(String, String)> {
        url::form_urlencoded::parse(text).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    };
    if !req.uri().path().starts_with("/api/") {
        // Pages and exports read query strings too: the same NUL rule holds there.
        if let Some(refusal) = refuse_nul(&pairs(req.uri().query().unwrap_or("").as_bytes())) {
            return refusal;
        }
        return next.run(req).await;
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/x-www-form-urlencoded"));
    if req.method() == Method::POST && is_form {
        let (mut parts, body) = req.into_parts();
        let bytes = match to_bytes(body, MAX_JSON_BODY).await {
            Ok(b) => b,
            Err(_) => {
                return refuse(StatusCode::PAYLOAD_TOO_LARGE, "bad_request", "the request body is too large")
            }
        };
        let given = pairs(&bytes);
        if let Some(refusal) = refuse_nul(&given) {
            return refusal;
        }
        parts.extensions.insert(app::error::RequestArguments(given));
        return next.run(Request::from_parts(parts, Body::from(bytes))).await;
    }
    let mut req = req;
    let given = pairs(req.uri().query().unwrap_or("").as_bytes());
    if let Some(refusal) = refuse_nul(&given) {
        return refusal;
    }
    req.extensions_mut().insert(app::error::RequestArguments(given));
    next.run(req).await
}

fn refuse_nul(given: &[(String, String)]) -> Option<Response> {
    let (name, _) = given.iter().find(|(k, v)| k.contains('\0') || v.contains('\0'))?;
    let name: String = name.replace('\0', "\\0").chars().take(64).collect();
    Some(refuse(
        StatusCode::BAD_REQUEST,
        "bad_request",
        &format!("invalid argument {name}: contains a NUL character"),
    ))
}

/// Paths anyone may load: sign-in, set-up, the built assets, health, and the API (which checks
/// sessions itself).
fn public_path(path: &str) -> bool {
    path == "/login"
        || path == "/setup"
        || path == "/healthz"
        || path == "/favicon.ico"
        || path.starts_with("/pkg/")
        || path.starts_with("/api/")
}

pub async fn require_session_for_pages(
    State(guards): State<Guards>,
    session: Session,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::GET || public_path(req.uri().path()) {
        return next.run(req).await;
    }
    match app::auth::session_user(&session, &guards.state).await {
        Ok(Some(_)) => next.run(req).await,
        Ok(None) => {
            let wanted = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let next_param: String =
                url::form_urlencoded::byte_serialize(app::auth::safe_next(Some(wanted)).as_bytes()).collect();
            Redirect::to(&format!("/login?next={next_param}")).into_response()
        }
        Err(_) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server hit an internal error; it has been logged",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn a_same_origin_browser_post_passes() {
        let h = headers(&[("host", "127.0.0.1:3000"), ("origin", "http://127.0.0.1:3000")]);
        assert!(same_origin(&h, None));
    }

    #[test]
    fn a_foreign_origin_is_refused() {
        let h = headers(&[("host", "127.0.0.1:3000"), ("origin", "http://evil.example")]);
        assert!(!same_origin(&h, None));
    }

    #[test]
    fn the_configured_public_url_wins_over_the_host_header() {
        let h = headers(&[("host", "internal:3000"), ("origin", "https://quiesce.example")]);
        assert!(same_origin(&h, Some("https://quiesce.example")));
        let h = headers(&[("host", "quiesce.example"), ("origin", "http://quiesce.example")]);
        assert!(!same_origin(&h, Some("https://quiesce.example")), "scheme must match too");
    }

    #[test]
    fn a_referer_stands_in_for_a_missing_origin() {
        let h = headers(&[("host", "a:1"), ("referer", "http://a:1/users")]);
        assert!(same_origin(&h, None));
        let h = headers(&[("host", "a:1"), ("referer", "http://b:1/")]);
        assert!(!same_origin(&h, None));
    }

    #[test]
    fn fetch_metadata_saying_cross_site_is_refused() {
        let h = headers(&[("host", "a:1"), ("sec-fetch-site", "cross-site")]);
        assert!(!same_origin(&h, None));
    }

    #[test]
    fn an_opaque_null_origin_is_refused() {
        let h = headers(&[("host", "a:1"), ("origin", "null")]);
        assert!(!same_origin(&h, None));
    }

    #[test]
    fn a_script_without_browser_headers_passes_to_the_role_checks() {
        assert!(same_origin(&headers(&[("host", "a:1")]), None));
    }
}
