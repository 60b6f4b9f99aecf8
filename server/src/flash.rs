//! Outcomes of forms posted without JavaScript, carried to the next page through the session.
//!
//! Leptos answers a plain-HTML form post with a redirect back to the form. A refusal's error is
//! in the redirect's URL (`?__path=…&__err=…`), which pages do not trust: anyone can craft such a
//! link. A success says what it did in the `x-quiesce-said` header (`app::api::say`). This layer
//! takes either off the response, keeps it in the session as an [`app::error::FormFlash`], and
//! hands it to the very next page load in the request's extensions (read by
//! `app::pages::provide_flash`), once. The header never leaves the server.

use app::api::{SAID_HEADER, SAID_MAX};
use app::error::FormFlash;
use app::ApiError;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use leptos::server_fn::error::ServerFnUrlError;
use tower_sessions::Session;

const FLASH_KEY: &str = "form_flash";

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

/// Moves a form post's error from its redirect into the session, and the session's flash into
/// the next page request.
pub async fn form_errors(session: Session, mut req: Request, next: Next) -> Response {
    let is_post = req.method() == Method::POST;
    let path = req.uri().path().to_string();
    if !is_post && req.method() == Method::GET && !path.starts_with("/api/") && !path.starts_with("/pkg/") {
        if let Ok(Some(flash)) = session.remove::<FormFlash>(FLASH_KEY).await {
            req.extensions_mut().insert(flash);
        }
        return next.run(req).await;
    }
    let mut res = next.run(req).await;
    let said = res.headers_mut().remove(SAID_HEADER).and_then(|v| said_text(&v));
    if is_post && path.starts_with("/api/") && res.status().is_redirection() {
        let location = res.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        if let Some((flash, stripped)) = location.as_deref().and_then(take_error) {
            if let Ok(v) = HeaderValue::from_str(&stripped) {
                if session.insert(FLASH_KEY, flash).await.is_ok() {
                    res.headers_mut().insert(header::LOCATION, v);
                }
            }
        } else if let Some(text) = said {
            let _ = session.insert(FLASH_KEY, FormFlash { path, outcome: Ok(text) }).await;
            // Leptos leaves an empty query behind when it strips an old error from the Referer.
            if let Some(v) = location
                .as_deref()
                .and_then(|l| l.strip_suffix('?'))
                .and_then(|l| HeaderValue::from_str(l).ok())
            {
                res.headers_mut().insert(header::LOCATION, v);
            }
        }
    }
    res
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
