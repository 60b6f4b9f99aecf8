//! Outcomes of forms posted without JavaScript, carried to the next page load in a cookie.
//!
//! Pages post their forms as plain HTML (with or without JavaScript, see `app::live`), and
//! Leptos answers such a post with a redirect back to the form. A refusal's error is in the
//! redirect's URL (`?__path=…&__err=…`), which pages do not trust: anyone can craft such a link.
//! A success says what it did in the `x-quiesce-said` header (`app::api::say`). This layer takes
//! either off the response and hands it, as an [`app::error::FormFlash`], to the very next page
//! load, once, in a short-lived cookie (`quiesce_flash`, HttpOnly, SameSite=Lax, `__Host-` and
//! Secure when the session cookie is): a link cannot set a cookie, and the `__Host-` prefix keeps
//! neighbouring subdomains from planting one. Not in the session: every request saves the
//! session (idle expiry), so a page's live re-read running beside the post would write back the
//! session it loaded before the post and lose the flash. A live re-read of a page
//! (`x-quiesce-reread`) neither takes nor clears it. The header never leaves the server.

use app::api::{SAID_HEADER, SAID_MAX};
use app::error::FormFlash;
use app::ApiError;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use leptos::server_fn::error::ServerFnUrlError;

/// The flash cookie's name: `__Host-` whenever it is Secure (as the session cookie's).
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-quiesce_flash"
    } else {
        "quiesce_flash"
    }
}

/// The longest flash cookie value read (browsers keep at most 4 KB per cookie anyway).
const COOKIE_MAX: usize = 6 * 1024;

/// The error a redirect's `Location` carries, and the `Location` without it.
pub fn take_error(location: &str) -> Option<(FormFlash, String)> {
    let url = url::Url::parse(location).ok()?;
    let mut path = None;
    let mut err = None;
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "__path" => path = Some(v.into_owned()),
            "__err" => err = Some(v.into_owned()),
            _ => {}
        }
    }
    let (path, err) = (path?, err?);
    // Bounded: a path is a server function's, an error a short JSON message.
    if path.len() > 200 || err.len() > 8 * 1024 {
        return None;
    }
    let error = ServerFnUrlError::<ApiError>::decode_err(&err);
    let mut stripped = location.to_string();
    ServerFnUrlError::<ApiError>::strip_error_info(&mut stripped);
    let stripped = stripped.strip_suffix('?').map(str::to_string).unwrap_or(stripped);
    Some((FormFlash { path, outcome: Err(error) }, stripped))
}

/// Moves a form post's outcome from its redirect into the flash cookie, and the cookie's flash
/// into the next page request (clearing the cookie).
pub async fn form_errors(State(secure): State<bool>, mut req: Request, next: Next) -> Response {
    let name = cookie_name(secure);
    let is_post = req.method() == Method::POST;
    let path = req.uri().path().to_string();
    let reread = req.headers().contains_key(app::live::REREAD_HEADER);
    if req.method() == Method::GET && !path.starts_with("/api/") && !path.starts_with("/pkg/") {
        let flash = (!reread).then(|| read_cookie(&req, name)).flatten();
        let Some(flash) = flash else { return next.run(req).await };
        req.extensions_mut().insert(flash);
        let mut res = next.run(req).await;
        if let Ok(v) = HeaderValue::from_str(&cookie(name, "", 0, secure)) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
        return res;
    }
    let mut res = next.run(req).await;
    let said = res.headers_mut().remove(SAID_HEADER).and_then(|v| said_text(&v));
    if !(is_post && path.starts_with("/api/") && res.status().is_redirection()) {
        return res;
    }
    let location = res.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (flash, location) = match location.as_deref().and_then(take_error) {
        Some((flash, stripped)) => (Some(flash), Some(stripped)),
        None => (
            said.map(|text| FormFlash { path, outcome: Ok(text) }),
            // Leptos leaves an empty query behind when it strips an old error from the Referer.
            location.as_deref().and_then(|l| l.strip_suffix('?')).map(str::to_string),
        ),
    };
    if let Some(v) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    let value = flash.and_then(|f| serde_json::to_string(&f).ok()).map(|json| app::urlencode(&json));
    if let Some(v) = value
        .filter(|v| v.len() <= COOKIE_MAX)
        .and_then(|v| HeaderValue::from_str(&cookie(name, &v, 60, secure)).ok())
    {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// A `Set-Cookie` value for the flash (`max_age` 0 clears it).
fn cookie(name: &str, value: &str, max_age: u32, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax{secure}")
}

/// The flash the request's cookie carries, if it is one.
fn read_cookie(req: &Request, name: &str) -> Option<FormFlash> {
    let raw = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)?;
    if raw.is_empty() || raw.len() > COOKIE_MAX {
        return None;
    }
    let (json, _) = url::form_urlencoded::parse(raw.as_bytes()).next()?;
    let flash: FormFlash = serde_json::from_str(&json).ok()?;
    // What a page shows is bounded like the header it came from.
    (flash.path.len() <= 200 && !matches!(&flash.outcome, Ok(t) if t.len() > 4 * SAID_MAX)).then_some(flash)
}

/// The success text of the `x-quiesce-said` header (percent-encoded UTF-8), bounded.
pub fn said_text(v: &HeaderValue) -> Option<String> {
    let raw = v.to_str().ok()?;
    if raw.len() > 3 * SAID_MAX {
        return None;
    }
    let (text, _) = url::form_urlencoded::parse(raw.as_bytes()).next()?;
    Some(text.chars().take(SAID_MAX).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_leaves_the_url_and_becomes_a_flash() {
        let e = ApiError::BadRequest("a reason is required".into());
        let url = ServerFnUrlError::new("/api/maintenance/enable", e.clone())
            .to_url("http://127.0.0.1:3000/?x=1")
            .unwrap()
            .to_string();
        let (flash, stripped) = take_error(&url).unwrap();
        assert_eq!(flash, FormFlash { path: "/api/maintenance/enable".into(), outcome: Err(e) });
        assert_eq!(stripped, "http://127.0.0.1:3000/?x=1");
        assert!(take_error("http://127.0.0.1:3000/mirrors").is_none());
    }

    #[test]
    fn a_success_text_survives_its_header_and_is_bounded() {
        let text = "Created mirror \u{201c}orders\u{201d} & more=1.";
        let v = HeaderValue::from_str(&app::urlencode(text)).unwrap();
        assert_eq!(said_text(&v).as_deref(), Some(text));
        let long = HeaderValue::from_str(&"a".repeat(10 * SAID_MAX)).unwrap();
        assert_eq!(said_text(&long), None);
    }
}
