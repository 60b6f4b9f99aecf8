//! Request guards that sit in front of the Leptos routes.
//!
//! - **Cross-origin refusal (CSRF).** Every state-changing request (any method but GET, HEAD,
//!   OPTIONS) must come from our own origin: its `Origin` header (or, without one, its `Referer`)
//!   must match the configured public URL, or, when none is configured, the request's own
//!   `Host`. A browser's `Sec-Fetch-Site: cross-site`/`same-site` is refused too. Requests with
//!   none of these headers come from scripts (curl, upgrade hooks), which carry no ambient
//!   browser cookies, so they pass to the role checks like any other. SameSite=Lax cookies are a
//!   second line. A request carrying `Authorization: Bearer …` is exempt: it is authenticated by
//!   that token alone (never by its cookies, see `app::auth::request_user`), and a browser cannot
//!   attach the header cross-origin without a CORS preflight, which this server never answers.
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
//!   to `/login?next=…`; server functions answer 401 themselves. A user who must change their
//!   password is sent to `/account` from every other page.
//! - **Who the client is.** The peer address of the connection, or — only when that peer is a
//!   configured `--trusted-proxy` — the last `X-Forwarded-For` entry not itself a trusted proxy.
//!   It is put in the request as `app::auth::ClientAddr` for the throttle and the audit.
//! - **Security headers** on every response: a Content-Security-Policy with a per-request nonce
//!   (the page's hydration script and resource scripts carry it; see [`CspNonce`]), and the
//!   fixed headers of [`static_headers`] (set with tower-http layers).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use app::auth::ClientAddr;
use app::state::AppState;
use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
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
    /// Reverse proxies whose `X-Forwarded-For` is believed (`--trusted-proxy`).
    pub trusted_proxies: Arc<[IpAddr]>,
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
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || app::auth::bearer(req.headers()).is_some();
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

/// The client behind a connection from `peer` (see the module docs). `X-Forwarded-For` lists
/// the addresses each proxy saw, oldest first; read from the right, every entry up to and
/// including the first untrusted one was written by a trusted proxy, so that one is the client.
/// Entries further left were written by the client itself and prove nothing.
pub fn client_of(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let parsed = hop
            .parse::<IpAddr>()
            .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
            .map(|ip| ip.to_canonical());
        match parsed {
            Ok(ip) => {
                client = ip;
                if !trusted.contains(&ip) {
                    break;
                }
            }
            // A garbled entry: the last well-formed hop stands.
            Err(_) => break,
        }
    }
    client
}

/// Decides the client address of each request and puts it in the request's extensions.
pub async fn client_address(State(guards): State<Guards>, mut req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().cloned() {
        let client = client_of(peer.ip(), req.headers(), &guards.trusted_proxies);
        req.extensions_mut().insert(ClientAddr(client.to_string()));
    }
    next.run(req).await
}

/// The nonce of this request's Content-Security-Policy; the page's scripts carry it (the router
/// hands it to Leptos as its `Nonce`).
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

/// The Content-Security-Policy for a response whose scripts carry `nonce`: only our own files,
/// the page's nonce'd inline scripts and our WebAssembly ('wasm-unsafe-eval' allows compiling
/// it, not `eval`); no framing, no plugins, no foreign form targets. `style-src-attr` allows
/// style *attributes* (the history timeline positions its bars with them); they cannot load
/// anything or run script.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; \
         connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// Gives each request a fresh CSP nonce and answers with the policy naming it.
pub async fn csp(mut req: Request, next: Next) -> Response {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    req.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut res = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&content_security_policy(&nonce)) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

/// Whether a response may be cached: only the built site files (scripts, WebAssembly, styles,
/// images). Pages, API answers and exports carry personal data and are `no-store`.
fn cacheable(res: &Response) -> bool {
    let ct = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    ["text/javascript", "application/javascript", "application/wasm", "text/css", "image/"]
        .iter()
        .any(|t| ct.starts_with(t))
}

/// Whether a site file's name carries its content hash (`pkg/quiesce.<22 base64url chars>.js`,
/// as cargo-leptos' `hash-files` names them): such a name never changes meaning.
pub fn is_hashed_asset(path: &str) -> bool {
    let Some(name) = path.strip_prefix("/pkg/") else {
        return false;
    };
    let mut parts = name.rsplit('.');
    let (Some(_ext), Some(hash), Some(stem)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !stem.is_empty()
        && !name.contains('/')
        && hash.len() == 22
        && hash.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether this build's site files are content-hashed (`hash.txt` next to the binary).
pub fn hash_file_present() -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("hash.txt")))
        .is_some_and(|p| p.is_file())
}

/// Caching of the site files: a content-hashed name is cached for a year and never revalidated;
/// an unhashed one (a debug build) is revalidated on every use. Pages stay `no-store`
/// ([`static_headers`]). The precompressed `.br` and `.gz` copies are chosen by
/// `Accept-Encoding` in the file handler, so the answer varies by it.
pub async fn asset_cache(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let mut res = next.run(req).await;
    if path.starts_with("/pkg/") && res.status().is_success() {
        let value = if is_hashed_asset(&path) { "public, max-age=31536000, immutable" } else { "no-cache" };
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
        res.headers_mut().insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    res
}

fn no_store(res: &Response) -> Option<HeaderValue> {
    (!cacheable(res)).then(|| HeaderValue::from_static("no-store"))
}

/// The fixed security headers, as tower-http layers: `nosniff`, `Referrer-Policy: same-origin`
/// (the CSRF check may fall back on our own Referer; other sites get none), `X-Frame-Options`
/// for browsers older than `frame-ancestors`, `Cache-Control: no-store` on everything but the
/// site files, and HSTS for a year unless the server runs on plain http.
pub fn static_headers(router: axum::Router, hsts: bool) -> axum::Router {
    use tower_http::set_header::SetResponseHeaderLayer;
    let router = router
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, no_store as fn(&Response) -> _));
    if hsts {
        router.layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("strict-transport-security"),
            HeaderValue::from_static("max-age=31536000"),
        ))
    } else {
        router
    }
}

/// Paths anyone may load: sign-in, set-up, the built assets, health, and the API and `/metrics`
/// (which check their callers themselves).
fn public_path(path: &str) -> bool {
    path == "/login"
        || path == "/setup"
        || path == "/healthz"
        || path == "/metrics"
        || path == "/favicon.ico"
        || path.starts_with("/pkg/")
        || path.starts_with("/api/")
}

pub async fn require_session_for_pages(
    State(guards): State<Guards>,
    session: Session,
    mut req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::GET || public_path(req.uri().path()) {
        return next.run(req).await;
    }
    match app::auth::session_user(&session, &guards.state).await {
        // Until an admin-set password is changed, the Account page is the only page.
        Ok(Some(u)) if u.must_change_password && req.uri().path() != "/account" => {
            Redirect::to("/account").into_response()
        }
        Ok(Some(u)) => {
            // The page's server functions use this user instead of reading it again.
            req.extensions_mut().insert(app::auth::PageUser(u));
            next.run(req).await
        }
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
    fn only_content_hashed_site_files_count_as_immutable() {
        assert!(is_hashed_asset("/pkg/quiesce.Ab3_-9xYz0123456789abc.wasm"));
        assert!(is_hashed_asset("/pkg/quiesce.Ab3_-9xYz0123456789abc.js"));
        assert!(!is_hashed_asset("/pkg/quiesce.js"));
        assert!(!is_hashed_asset("/pkg/quiesce.css"));
        assert!(!is_hashed_asset("/pkg/a/quiesce.Ab3_-9xYz0123456789abc.js"));
        assert!(!is_hashed_asset("/quiesce.Ab3_-9xYz0123456789abc.js"));
        assert!(!is_hashed_asset("/pkg/.Ab3_-9xYz0123456789abc.js"));
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
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7")]);
        // Straight from a client: the header is the client's own claim.
        assert_eq!(client_of("198.51.100.1".parse().unwrap(), &h, &[proxy]).to_string(), "198.51.100.1");
        // Through the proxy: its entry (the rightmost) names the client, not the forged one.
        assert_eq!(client_of(proxy, &h, &[proxy]).to_string(), "203.0.113.7");
        // Without the setting, nobody is believed.
        assert_eq!(client_of(proxy, &h, &[]).to_string(), "10.0.0.2");
        // Two trusted proxies in a row are skipped; garbage stops the walk.
        let inner: IpAddr = "10.0.0.3".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "203.0.113.9, 10.0.0.2")]);
        assert_eq!(client_of(inner, &h, &[proxy, inner]).to_string(), "203.0.113.9");
        let h = headers(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(client_of(proxy, &h, &[proxy]).to_string(), "10.0.0.2");
    }

    #[test]
    fn the_policy_names_the_nonce_and_forbids_framing() {
        let p = content_security_policy("abc123");
        assert!(p.contains("'nonce-abc123'") && p.contains("frame-ancestors 'none'"), "{p}");
        assert!(!p.contains("'unsafe-eval'") && !p.contains("script-src 'self' 'unsafe-inline'"), "{p}");
    }

    #[test]
    fn a_script_without_browser_headers_passes_to_the_role_checks() {
        assert!(same_origin(&headers(&[("host", "a:1")]), None));
    }
}
