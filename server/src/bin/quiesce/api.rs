//! The commands, over the server's HTTP API (see API.md): each turns answers into progress
//! lines on stdout and a [`Failure`] with its exit code.

use std::collections::HashMap;
use std::time::Duration;

use quiesce_core::domain::{MirrorView, PeerView, Plan, Window, WindowDetail, WindowPhase};
use quiesce_core::events::Event;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::sse;
use crate::{EXIT_FAILED, EXIT_REFUSED, EXIT_TIMED_OUT, EXIT_USAGE};

/// Why a command did not succeed, and the exit code that says so.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn usage(m: impl Into<String>) -> Self {
        Failure { code: EXIT_USAGE, message: m.into() }
    }
    pub fn failed(m: impl Into<String>) -> Self {
        Failure { code: EXIT_FAILED, message: m.into() }
    }
}

/// An answer other than 2xx: its status and the server's message.
struct HttpError {
    status: u16,
    message: String,
}

impl From<HttpError> for Failure {
    fn from(e: HttpError) -> Self {
        let code = match e.status {
            400 | 401 | 403 => EXIT_USAGE,
            409 => EXIT_REFUSED,
            _ => EXIT_FAILED,
        };
        let message = match e.status {
            401 => "the server refused the API token (unknown, expired, revoked, or its owner is disabled)"
                .into(),
            403 => format!("the token's role may not do this: {}", e.message),
            _ => e.message,
        };
        Failure { code, message }
    }
}

pub struct Client {
    http: reqwest::Client,
    /// Without a total timeout: for the live stream.
    stream_http: reqwest::Client,
    base: String,
}

impl Client {
    pub fn new(url: &str, token: &str) -> Result<Self, Failure> {
        let base = url.trim_end_matches('/').to_string();
        let parsed =
            url::Url::parse(&base).map_err(|_| Failure::usage(format!("--url {base:?} is not a URL")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Failure::usage("--url must start with http:// or https://"));
        }
        let mut headers = reqwest::header::HeaderMap::new();
        let mut auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Failure::usage("the API token holds characters a header cannot carry"))?;
        auth.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, auth);
        let build = |total: Option<Duration>| {
            let mut b = reqwest::Client::builder()
                .default_headers(headers.clone())
                .connect_timeout(Duration::from_secs(10))
                .user_agent(concat!("quiesce-cli/", env!("CARGO_PKG_VERSION")));
            if let Some(t) = total {
                b = b.timeout(t);
            }
            b.build().map_err(|e| Failure::failed(format!("cannot make an HTTP client: {e}")))
        };
        Ok(Client { http: build(Some(Duration::from_secs(30)))?, stream_http: build(None)?, base })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn answer(&self, r: Result<reqwest::Response, reqwest::Error>) -> Result<Value, Failure> {
        let r = r.map_err(|e| Failure::failed(format!("cannot reach {}: {}", self.base, without_url(&e))))?;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let message = body["message"].as_str().unwrap_or("the server answered an error").to_string();
        Err(HttpError { status, message }.into())
    }

    async fn get(&self, path: &str) -> Result<Value, Failure> {
        self.answer(self.http.get(self.url(path)).send().await).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, Failure> {
        self.answer(self.http.post(self.url(path)).json(&body).send().await).await
    }

    /// Opens the live stream (before a request whose progress is to be followed, so no event
    /// is missed).
    async fn events(&self) -> Result<sse::Stream, Failure> {
        let r = self.stream_http.get(self.url("/api/events")).send().await;
        let r = r.map_err(|e| Failure::failed(format!("cannot reach {}: {}", self.base, without_url(&e))))?;
        let status = r.status().as_u16();
        if status != 200 {
            let message = r.json::<Value>().await.ok().and_then(|v| v["message"].as_str().map(str::to_owned));
            return Err(
                HttpError { status, message: message.unwrap_or_else(|| "no live stream".into()) }.into()
            );
        }
        Ok(sse::Stream::new(r))
    }

    async fn active(&self) -> Result<Option<WindowDetail>, Failure> {
        typed(self.get("/api/maintenance/status").await?)
    }

    async fn window(&self, id: &str) -> Result<WindowDetail, Failure> {
        let q: String = url::form_urlencoded::Serializer::new(String::new()).append_pair("id", id).finish();
        typed(self.get(&format!("/api/maintenance/window?{q}")).await?)
    }
}

/// A reqwest error without the URL (it may carry a query string).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "");
    }
    if e.is_connect() {
        s = "connection refused or unreachable".into();
    } else if e.is_timeout() {
        s = "timed out".into();
    }
    s
}

/// The server's most mirrors per page of `GET /api/mirrors`.
const MIRRORS_PER_PAGE: usize = 1000;

/// Every mirror, a page at a time (pages count from 0; a catalog may hold many thousands).
async fn all_mirrors(client: &Client) -> Result<Vec<MirrorView>, Failure> {
    let mut all = Vec::new();
    for page in 0.. {
        let batch: Vec<MirrorView> =
            typed(client.get(&format!("/api/mirrors?page={page}&per_page={MIRRORS_PER_PAGE}")).await?)?;
        let last = batch.len() < MIRRORS_PER_PAGE;
        all.extend(batch);
        if last {
            break;
        }
    }
    Ok(all)
}

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, Failure> {
    serde_json::from_value(v).map_err(|e| Failure::failed(format!("unexpected answer from the server: {e}")))
}

fn describe(w: &Window) -> String {
    let version = w.version.as_deref().map(|v| format!(", version {v}")).unwrap_or_default();
    format!(
        "window {}: {} (step {}), opened by {} at {} for {:?}{version}",
        w.id,
        w.phase,
        w.step,
        w.requested_by,
        w.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        w.reason
    )
}

pub async fn status(client: &Client, json: bool) -> Result<(), Failure> {
    let v = client.get("/api/maintenance/status").await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    match typed::<Option<WindowDetail>>(v)? {
        None => println!("no maintenance window is active"),
        Some(d) => {
            println!("{}", describe(&d.window));
            let held = d.mirrors.iter().filter(|m| m.released_at.is_none()).count();
            println!("mirrors backed up: {}, still held: {held}", d.mirrors.len());
            if let Some(e) = &d.window.error {
                println!("error: {e}");
            }
        }
    }
    Ok(())
}

pub struct Enable<'a> {
    pub reason: &'a str,
    pub scope: &'a str,
    pub skip_if_version: Option<&'a str>,
    pub version: Option<&'a str>,
    pub skip_if_no_mirrors: bool,
    pub wait: Option<Duration>,
}

/// `all`, `mirrors:a,b` or `peers:a,b` (names or ids) → the enable arguments.
async fn scope_args(client: &Client, scope: &str) -> Result<(String, String), Failure> {
    let (kind, list) = scope.split_once(':').unwrap_or((scope, ""));
    let kind = kind.trim();
    let wanted: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let known: Vec<(String, String)> = match kind {
        "all" if wanted.is_empty() => return Ok(("all".into(), String::new())),
        "mirrors" => all_mirrors(client).await?.into_iter().map(|m| (m.id, m.name)).collect(),
        "peers" => typed::<Vec<PeerView>>(client.get("/api/peers").await?)?
            .into_iter()
            .map(|p| (p.id, p.name))
            .collect(),
        _ => return Err(Failure::usage("--scope must be all, mirrors:NAME,… or peers:NAME,…")),
    };
    if wanted.is_empty() {
        return Err(Failure::usage(format!("--scope {kind}: name at least one, e.g. {kind}:first,second")));
    }
    let mut ids = Vec::new();
    for w in wanted {
        match known.iter().find(|(id, name)| id == w || name == w) {
            Some((id, _)) => ids.push(id.clone()),
            None => return Err(Failure::usage(format!("--scope: no {kind} named {w:?}"))),
        }
    }
    Ok((kind.to_string(), ids.join(",")))
}

pub async fn enable(client: &Client, args: Enable<'_>) -> Result<(), Failure> {
    if let Some(v) = args.skip_if_version {
        let newest: Vec<Window> = typed(client.get("/api/maintenance/windows").await?)?;
        if let Some(w) = newest.first() {
            let usable = !matches!(w.phase, WindowPhase::Failed | WindowPhase::Aborted);
            if w.version.as_deref() == Some(v.trim()) && usable {
                println!(
                    "skipped: the newest maintenance window already recorded version {v} ({})",
                    describe(w)
                );
                return Ok(());
            }
        }
    }
    let (scope, ids) = scope_args(client, args.scope).await?;
    if args.skip_if_no_mirrors {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("scope", &scope)
            .append_pair("ids", &ids)
            .finish();
        let plan: Plan = typed(client.get(&format!("/api/maintenance/plan?{q}")).await?)?;
        if plan.blocked_by.is_none() && plan.would_pause.is_empty() && plan.snapshotting.is_empty() {
            println!("skipped: no running or snapshotting mirror in scope; nothing would pause");
            return Ok(());
        }
    }
    let stream = match args.wait {
        Some(_) => Some(client.events().await?),
        None => None,
    };
    let body = json!({ "reason": args.reason, "scope": scope, "ids": ids, "version": args.version });
    let window: Window = typed(client.post("/api/maintenance/enable", body).await?)?;
    println!("maintenance enabling: {}", describe(&window));
    match (args.wait, stream) {
        (Some(timeout), Some(stream)) => {
            follow(client, stream, &window.id, WindowPhase::Enabled, timeout).await
        }
        _ => Ok(()),
    }
}

pub async fn disable(client: &Client, wait: Option<Duration>) -> Result<(), Failure> {
    let Some(active) = client.active().await? else {
        println!("no maintenance window is active; nothing to do");
        return Ok(());
    };
    let stream = match wait {
        Some(_) => Some(client.events().await?),
        None => None,
    };
    if active.window.phase != WindowPhase::Disabling {
        let w: Window =
            typed(client.post("/api/maintenance/disable", json!({ "window_id": active.window.id })).await?)?;
        println!("maintenance disabling: {}", describe(&w));
    } else {
        println!("already disabling: {}", describe(&active.window));
    }
    match (wait, stream) {
        (Some(timeout), Some(stream)) => {
            follow(client, stream, &active.window.id, WindowPhase::Disabled, timeout).await
        }
        _ => Ok(()),
    }
}

pub async fn skip_wait(client: &Client, mirror: &str) -> Result<(), Failure> {
    let Some(active) = client.active().await? else {
        return Err(Failure::failed("no maintenance window is active"));
    };
    let mirrors = all_mirrors(client).await?;
    let Some(m) = mirrors.iter().find(|m| m.id == mirror || m.name == mirror) else {
        return Err(Failure::usage(format!("no mirror named {mirror:?}")));
    };
    client
        .post("/api/maintenance/skip-wait", json!({ "window_id": active.window.id, "mirror_id": m.id }))
        .await?;
    println!("window {} no longer waits for mirror {}", active.window.id, m.name);
    Ok(())
}

/// Whether the window reached `target` (Ok(true)), is still on its way (Ok(false)), or ended
/// somewhere else (a failure naming why).
fn reached(w: &Window, target: WindowPhase) -> Result<bool, Failure> {
    if w.phase == target {
        return Ok(true);
    }
    match w.phase {
        WindowPhase::Failed => Err(Failure::failed(format!(
            "the window failed: {}",
            w.error.as_deref().unwrap_or("no reason given")
        ))),
        WindowPhase::Aborted => Err(Failure::failed("the window was aborted")),
        WindowPhase::Disabled | WindowPhase::Disabling if target == WindowPhase::Enabled => {
            Err(Failure::failed(format!("the window is {} before it was enabled", w.phase)))
        }
        _ => Ok(false),
    }
}

/// Prints the window's progress from the live stream until it reaches `target`. The stream only
/// says when to look: the window is re-read after each of its events, after a `resync`, and
/// every few seconds of silence, so a missed event never leaves the command waiting.
async fn follow(
    client: &Client,
    mut stream: sse::Stream,
    window_id: &str,
    target: WindowPhase,
    timeout: Duration,
) -> Result<(), Failure> {
    let deadline = Instant::now() + timeout;
    let mut names: HashMap<String, String> = match all_mirrors(client).await {
        Ok(list) => list.into_iter().map(|m| (m.id, m.name)).collect(),
        Err(_) => HashMap::new(),
    };
    let mut stream_open = true;
    loop {
        let detail = client.window(window_id).await?;
        if reached(&detail.window, target)? {
            // The stream may still carry this window's last events (read before they were
            // printed): print them up to the one announcing `target`, so the progress lines are
            // complete however fast the window went.
            if stream_open {
                let until = Instant::now() + Duration::from_secs(1);
                while let Ok(Some(m)) = tokio::time::timeout_at(until, stream.next()).await {
                    let Ok(event) = serde_json::from_str::<Event>(&m.data) else { continue };
                    if m.event != "message" || event.window_id() != Some(window_id) {
                        continue;
                    }
                    print_event(&event, &names);
                    if matches!(&event, Event::WindowChanged { phase, .. } if *phase == target) {
                        break;
                    }
                }
            }
            println!("maintenance {target}: {}", describe(&detail.window));
            return Ok(());
        }
        for e in &detail.mirrors {
            names.entry(e.mirror_id.clone()).or_insert_with(|| e.mirror_name.clone());
        }
        // Wait for something about this window (or a few seconds of silence).
        let until = (Instant::now() + Duration::from_secs(5)).min(deadline);
        loop {
            let next = async {
                if stream_open {
                    stream.next().await
                } else {
                    futures::future::pending().await
                }
            };
            match tokio::time::timeout_at(until, next).await {
                Err(_) => break,
                Ok(None) => {
                    // The stream ended (server restart, session re-check): keep going by re-reading.
                    stream_open = false;
                    break;
                }
                Ok(Some(m)) if m.event == "resync" => break,
                Ok(Some(m)) if m.event == "signed_out" => {
                    return Err(Failure::usage(
                        "the server ended the live stream: the API token is no longer valid",
                    ))
                }
                Ok(Some(m)) if m.event == "message" => {
                    let Ok(event) = serde_json::from_str::<Event>(&m.data) else { continue };
                    if event.window_id() != Some(window_id) {
                        continue;
                    }
                    print_event(&event, &names);
                    if matches!(event, Event::WindowChanged { .. }) {
                        break;
                    }
                }
                Ok(Some(_)) => {}
            }
        }
        if Instant::now() >= deadline {
            let w = client.window(window_id).await?.window;
            return Err(Failure {
                code: EXIT_TIMED_OUT,
                message: format!(
                    "timed out after {}s waiting for the window to be {target}; it is {} at step {} (the window goes on; see `quiesce maintenance status`)",
                    timeout.as_secs(),
                    w.phase,
                    w.step
                ),
            });
        }
    }
}

fn print_event(event: &Event, names: &HashMap<String, String>) {
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_string());
    match event {
        Event::WindowChanged { phase, step, error, .. } => match error {
            Some(e) => println!("window {phase} at step {step}: {e}"),
            None => println!("window {phase}, step {step}"),
        },
        Event::WindowStepFinished { step, detail, .. } => println!("step {step} finished: {detail}"),
        Event::WindowMirror { mirror_id, action, outcome, .. } => match outcome {
            Some(o) => println!("mirror {}: {action} ({o:?})", name(mirror_id)),
            None => println!("mirror {}: {action}", name(mirror_id)),
        },
        _ => {}
    }
}
