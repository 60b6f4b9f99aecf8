//! The peer rules: which databases a peer may be, so that adding a peer can never become a way
//! into the server itself (its catalog, its files, or credentials it happens to hold).
//!
//! Owns the checks every peer URL passes before the engine connects — when a peer is created and
//! again whenever a stored peer is connected, so tightening a setting takes effect at the next
//! connection:
//!
//! - **SQLite** peers are files under one configured directory ([`PeerRules::sqlite_dir`]). The
//!   path is resolved (`..` and symlinks followed) and must stay inside it; the catalog's own
//!   files and the key file ([`PeerRules::forbidden_files`]) are refused; a missing file is
//!   refused unless the caller asked to create it. Without a directory, SQLite peers are refused.
//! - **Postgres** peer URLs are parsed field by field and the connection options are built from
//!   those fields only, so nothing comes from the server's environment (`PG*` variables) or from
//!   `~/.pgpass`: user, host and database are required; Unix-domain sockets (`host=/…` or a
//!   percent-encoded path as host) and every query parameter but `sslmode` and `schema` (a
//!   checked identifier that leads the connection's `search_path`) are refused; the
//!   `sslrootcert`/`sslcert`/`sslkey` file parameters only with [`PeerRules::allow_cert_files`].
//!   A URL without a password would authenticate with whatever the database server grants this
//!   machine (trust or peer authentication): an ambient credential, refused unless
//!   [`PeerRules::allow_passwordless`]. Environment variables sqlx would still inherit
//!   (`PGPASSWORD` for a passwordless URL, `PGSSLCERT`, `PGSSLKEY`, `PGSSLROOTCERT`, `PGOPTIONS`)
//!   make Postgres peers refused while set. An optional host allow-list applies. The catalog's
//!   own database (same host, port and database; hosts compared by resolved address, every
//!   loopback address counting as one) is refused.
//! - A SQLite file is compared with the forbidden files by inode too, so a hard link to the
//!   catalog is refused before anything opens it (SQLite must never open one database under two
//!   names: each name gets its own `-wal` file). After connecting, a database holding this
//!   installation's `instance` row is refused as well (it is the catalog, whatever name reached
//!   it); see `Engine::create_peer`.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use super::super::EngineError;
use crate::domain::PeerKind;

/// Environment variables sqlx reads into every Postgres connection and that cannot be overridden
/// field by field: while one is set, a peer connection would inherit it.
pub const INHERITED_PG_VARS: [&str; 4] = ["PGSSLCERT", "PGSSLKEY", "PGSSLROOTCERT", "PGOPTIONS"];

/// Where the catalog lives, when it is on Postgres: a peer naming the same is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogLocation {
    pub host: String,
    pub port: u16,
    pub database: String,
}

impl CatalogLocation {
    /// The location named by a catalog URL; `None` for SQLite catalogs or what cannot be parsed.
    pub fn from_catalog_url(url: &str) -> Option<Self> {
        let u = url::Url::parse(url).ok()?;
        if !matches!(u.scheme(), "postgres" | "postgresql") {
            return None;
        }
        let query = |k: &str| u.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
        let host = query("host").or_else(|| u.host_str().map(str::to_string)).unwrap_or_default();
        let port = query("port").and_then(|p| p.parse().ok()).or(u.port()).unwrap_or(5432);
        let user = decode(u.username());
        let database = query("dbname")
            .or_else(|| Some(decode(u.path().trim_start_matches('/'))).filter(|d| !d.is_empty()))
            .unwrap_or(user);
        Some(CatalogLocation { host, port, database })
    }
}

/// The rules peers must satisfy. `Default` is the strictest: no SQLite peers, no passwordless
/// Postgres URLs, no certificate files, no catalog known.
#[derive(Debug, Clone)]
pub struct PeerRules {
    /// SQLite peers must be files under this directory; `None` refuses SQLite peers.
    pub sqlite_dir: Option<PathBuf>,
    /// Files a SQLite peer may never be: the catalog (and its `-wal`, `-shm`, `-journal`), the
    /// key file.
    pub forbidden_files: Vec<PathBuf>,
    /// Accept Postgres URLs without a password (the database server's trust or peer
    /// authentication decides: an ambient credential).
    pub allow_passwordless: bool,
    /// Accept `sslrootcert`, `sslcert` and `sslkey` parameters naming files on this machine.
    pub allow_cert_files: bool,
    /// When not empty, the only hosts Postgres peers may name (compared case-insensitively).
    pub allowed_hosts: Vec<String>,
    /// The catalog's own database, when it is on Postgres.
    pub catalog: Option<CatalogLocation>,
    /// The installation's id: a peer database holding it in an `instance` table is the catalog.
    pub catalog_instance_id: Option<String>,
    /// The `PG*` variables set in the server's environment (names only), captured once.
    pub environment: BTreeSet<String>,
    /// How long connecting to a peer may take.
    pub connect_timeout: Duration,
}

impl Default for PeerRules {
    fn default() -> Self {
        PeerRules {
            sqlite_dir: None,
            forbidden_files: Vec::new(),
            allow_passwordless: false,
            allow_cert_files: false,
            allowed_hosts: Vec::new(),
            catalog: None,
            catalog_instance_id: None,
            environment: pg_environment(),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// The names of the `PG*` variables set in this process's environment.
pub fn pg_environment() -> BTreeSet<String> {
    std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()).filter(|k| k.starts_with("PG")).collect()
}

/// The catalog's SQLite files (the database and its companions) for [`PeerRules::forbidden_files`].
pub fn sqlite_catalog_files(catalog_url: &str) -> Vec<PathBuf> {
    let Some(rest) = catalog_url.strip_prefix("sqlite://").or_else(|| catalog_url.strip_prefix("sqlite:"))
    else {
        return Vec::new();
    };
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        return Vec::new();
    }
    let base = PathBuf::from(path);
    let mut files = vec![base.clone()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut s = base.clone().into_os_string();
        s.push(suffix);
        files.push(PathBuf::from(s));
    }
    files
}

/// A peer URL that passed the rules: what to connect to and what to store.
#[derive(Debug, Clone)]
pub struct CheckedPeer {
    pub kind: PeerKind,
    /// The URL to store (credentials included; sealed before it reaches the catalog).
    pub url: String,
    /// The redacted form pages may show.
    pub location: String,
    pub(crate) connect: Connect,
}

#[derive(Debug, Clone)]
pub(crate) enum Connect {
    Sqlite { path: PathBuf, create: bool },
    Postgres(Box<PgTarget>),
}

/// A Postgres peer URL, field by field.
#[derive(Clone, PartialEq, Eq)]
pub struct PgTarget {
    pub user: String,
    pub password: Option<String>,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub ssl_mode: Option<String>,
    pub ssl_root_cert: Option<String>,
    pub ssl_cert: Option<String>,
    pub ssl_key: Option<String>,
    /// The schema the peer's tables are in (`?schema=`): the connection's `search_path` starts
    /// with it, so tables are read, and created on a destination, there. `None`: the user's
    /// default `search_path` (normally `public`).
    pub schema: Option<String>,
}

impl std::fmt::Debug for PgTarget {
    // Hand-written so a password never reaches a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// The `search_path` of a peer whose tables are in `schema` (a checked identifier, so it needs
/// no quoting). `public` stays behind it, so types and functions kept there (enums, extensions)
/// still resolve; what Quiesce creates goes into `schema`, the first.
pub(crate) fn search_path(schema: &str) -> (&'static str, String) {
    ("search_path", format!("{schema},public"))
}

/// The settings every Postgres peer session runs with (sent at connection start, so they win
/// over the server's, the database's and the role's defaults). Values travel between peers as
/// Postgres's text form, and that form depends on them: under a database's `DateStyle = 'SQL,
/// DMY'` a source prints 3 February as `03/02/2024`, which a destination reading `MDY` takes for
/// 2 March; `extra_float_digits = 0` rounds floats; `IntervalStyle = 'sql_standard'` prints
/// negative intervals that other styles read differently. No spaces: startup options are split
/// on them.
pub(crate) const TEXT_SETTINGS: [(&str, &str); 5] = [
    ("DateStyle", "ISO,YMD"),
    // Only the printed offset depends on it (the instant does not); fixed so that a SQLite
    // destination, which keeps the text, gets one form.
    ("TimeZone", "UTC"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "3"),
    ("bytea_output", "hex"),
];

/// [`TEXT_SETTINGS`] as a startup `options` string (`-c name=value …`).
pub(crate) fn text_settings_option() -> String {
    TEXT_SETTINGS.iter().map(|(k, v)| format!("-c {k}={v}")).collect::<Vec<_>>().join(" ")
}

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidPeer(msg.into())
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Percent-decoding without `+` meaning a space (URL userinfo and paths are not form-encoded).
fn percent_decode(s: &str) -> Result<String, EngineError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or_else(|| invalid("the URL has a bad percent-escape"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| invalid("the URL has a bad percent-escape"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid("the URL is not valid UTF-8 once decoded"))
}

impl PgTarget {
    /// Parses a `postgres://user[:password]@host[:port]/database[?sslmode=…]` URL. Only the
    /// shape is checked here; [`PeerRules::check`] applies the rules.
    pub fn parse(input: &str) -> Result<PgTarget, EngineError> {
        let u = url::Url::parse(input).map_err(|_| invalid("not a valid postgres:// URL"))?;
        if !matches!(u.scheme(), "postgres" | "postgresql") {
            return Err(invalid("not a postgres:// URL"));
        }
        if u.fragment().is_some() {
            return Err(invalid("the URL may not have a #fragment"));
        }
        let user = percent_decode(u.username())?;
        if user.is_empty() {
            return Err(invalid("the URL must name a user (postgres://user:password@host/database)"));
        }
        let password = match u.password() {
            Some(p) => Some(percent_decode(p)?).filter(|p| !p.is_empty()),
            None => None,
        };
        let host = match u.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => String::new(),
        };
        if host.is_empty() {
            return Err(invalid("the URL must name a host (Unix-domain sockets are not allowed)"));
        }
        if host.contains('%') || host.contains('/') {
            return Err(invalid("Unix-domain sockets are not allowed: name a host and port"));
        }
        let port = u.port().unwrap_or(5432);
        if port == 0 {
            return Err(invalid("port 0 is not a port"));
        }
        let database = percent_decode(u.path().trim_start_matches('/'))?;
        if database.is_empty() || database.contains('/') {
            return Err(invalid("the URL must name one database (postgres://user@host/database)"));
        }
        let mut target = PgTarget {
            user,
            password,
            host,
            port,
            database,
            ssl_mode: None,
            ssl_root_cert: None,
            ssl_cert: None,
            ssl_key: None,
            schema: None,
        };
        let mut seen = BTreeSet::new();
        for (k, v) in u.query_pairs() {
            if !seen.insert(k.to_string()) {
                return Err(invalid(format!("the parameter {k:?} is given twice")));
            }
            let v = v.into_owned();
            match k.as_ref() {
                "sslmode" => {
                    v.parse::<PgSslMode>().map_err(|_| {
                        invalid("sslmode must be disable, allow, prefer, require, verify-ca or verify-full")
                    })?;
                    target.ssl_mode = Some(v);
                }
                "sslrootcert" => target.ssl_root_cert = Some(v),
                "sslcert" => target.ssl_cert = Some(v),
                "sslkey" => target.ssl_key = Some(v),
                "schema" => {
                    super::check_identifier("schema", &v)?;
                    target.schema = Some(v);
                }
                "host" | "hostaddr" => {
                    return Err(invalid(format!(
                        "the parameter {k:?} is not allowed (no Unix-domain sockets or second hosts): \
                         put the host in the URL"
                    )))
                }
                other => {
                    return Err(invalid(format!(
                        "the parameter {other:?} is not allowed (only sslmode and schema, and with the \
                         server's permission sslrootcert, sslcert, sslkey)"
                    )))
                }
            }
        }
        Ok(target)
    }

    /// `host:port/database` (and `?schema=…` when one is named), for pages.
    pub fn location(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match &self.schema {
            Some(schema) => format!("{host}:{}/{}?schema={schema}", self.port, self.database),
            None => format!("{host}:{}/{}", self.port, self.database),
        }
    }

    /// `host:port`, for errors.
    pub fn address(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("{host}:{}", self.port)
    }

    /// Connection options built from these fields only. Every field sqlx would otherwise take from
    /// the environment is set explicitly; `~/.pgpass` is never read.
    pub fn options(&self) -> PgConnectOptions {
        let mode = self.ssl_mode.as_deref().and_then(|m| m.parse().ok()).unwrap_or(PgSslMode::Prefer);
        let mut o = PgConnectOptions::new_without_pgpass()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .database(&self.database)
            .ssl_mode(mode)
            .application_name("quiesce")
            .options(TEXT_SETTINGS);
        if let Some(p) = &self.password {
            o = o.password(p);
        }
        if let Some(c) = &self.ssl_root_cert {
            o = o.ssl_root_cert(c);
        }
        if let Some(c) = &self.ssl_cert {
            o = o.ssl_client_cert(c);
        }
        if let Some(c) = &self.ssl_key {
            o = o.ssl_client_key(c);
        }
        if let Some(schema) = &self.schema {
            o = o.options([search_path(schema)]);
        }
        o
    }
}

impl PeerRules {
    /// Checks what a user typed (a SQLite path, `sqlite://path`, or a `postgres://` URL).
    /// `create_file` allows a missing SQLite file to be created (inside the directory).
    pub async fn check(&self, input: &str, create_file: bool) -> Result<CheckedPeer, EngineError> {
        let input = input.trim();
        if input.contains('\0') {
            return Err(invalid("the URL contains a NUL character"));
        }
        if input.starts_with("postgres://") || input.starts_with("postgresql://") {
            return self.check_postgres(input).await;
        }
        let path = input.strip_prefix("sqlite://").or_else(|| input.strip_prefix("sqlite:")).unwrap_or(input);
        if path.is_empty()
            || path.contains('?')
            || path == ":memory:"
            || input.contains("://") && !input.starts_with("sqlite://")
        {
            return Err(invalid("expected a SQLite file path (or sqlite://path) or a postgres:// URL"));
        }
        self.check_sqlite(Path::new(path), create_file)
    }

    fn check_sqlite(&self, path: &Path, create_file: bool) -> Result<CheckedPeer, EngineError> {
        let Some(dir) = &self.sqlite_dir else {
            return Err(invalid(
                "SQLite peers are not allowed on this server (no peers directory is configured)",
            ));
        };
        let dir = dir.canonicalize().map_err(|_| {
            invalid(format!("the peers directory {} does not exist on the server", dir.display()))
        })?;
        let full = if path.is_absolute() { path.to_path_buf() } else { dir.join(path) };
        let outside = || {
            invalid(format!(
                "SQLite peers must be files inside the peers directory {} (paths are resolved, \
                 symlinks and '..' included)",
                dir.display()
            ))
        };
        // `symlink_metadata` sees a dangling symlink too: it counts as existing, so a link to a
        // file outside can never be created through.
        let (resolved, exists) = match std::fs::symlink_metadata(&full) {
            Ok(_) => {
                let resolved = full.canonicalize().map_err(|_| outside())?;
                if !resolved.is_file() {
                    return Err(invalid("the SQLite peer path is not a regular file"));
                }
                (resolved, true)
            }
            Err(_) => {
                let name = match full.components().next_back() {
                    Some(Component::Normal(n)) => n.to_owned(),
                    _ => return Err(outside()),
                };
                let parent = full.parent().ok_or_else(outside)?;
                let parent = parent.canonicalize().map_err(|_| {
                    invalid("the SQLite file's directory does not exist inside the peers directory")
                })?;
                (parent.join(name), false)
            }
        };
        if !resolved.starts_with(&dir) || resolved == dir {
            return Err(outside());
        }
        if self.forbidden_files.iter().any(|f| same_file(f, &resolved)) {
            return Err(invalid(
                "this file belongs to Quiesce itself (its catalog or key) and cannot be a peer",
            ));
        }
        if !exists && !create_file {
            return Err(invalid(format!(
                "no SQLite file {} in the peers directory (ask to create it with create_file)",
                resolved.strip_prefix(&dir).unwrap_or(&resolved).display()
            )));
        }
        let location = resolved.strip_prefix(&dir).unwrap_or(&resolved).display().to_string();
        Ok(CheckedPeer {
            kind: PeerKind::Sqlite,
            url: format!("sqlite://{}", resolved.display()),
            location,
            connect: Connect::Sqlite { path: resolved, create: !exists },
        })
    }

    async fn check_postgres(&self, input: &str) -> Result<CheckedPeer, EngineError> {
        let t = PgTarget::parse(input)?;
        if t.password.is_none() && !self.allow_passwordless {
            return Err(invalid(
                "the URL has no password: the connection would rely on ambient credentials (trust or \
                 peer authentication granted to this machine); give a password, or start the server \
                 with --peer-allow-passwordless",
            ));
        }
        let file_params =
            [("sslrootcert", &t.ssl_root_cert), ("sslcert", &t.ssl_cert), ("sslkey", &t.ssl_key)];
        if let Some((name, _)) = file_params.iter().find(|(_, v)| v.is_some()) {
            if !self.allow_cert_files {
                return Err(invalid(format!(
                    "the parameter {name:?} names a file on the server, which is not allowed \
                     (start the server with --peer-allow-cert-files)"
                )));
            }
        }
        let mut inherited: Vec<&str> =
            INHERITED_PG_VARS.iter().copied().filter(|v| self.environment.contains(*v)).collect();
        if t.password.is_none() && self.environment.contains("PGPASSWORD") {
            inherited.push("PGPASSWORD");
        }
        if !inherited.is_empty() {
            return Err(invalid(format!(
                "the server's environment sets {}, which a peer connection would inherit; unset it \
                 to use Postgres peers",
                inherited.join(", ")
            )));
        }
        if !self.allowed_hosts.is_empty()
            && !self.allowed_hosts.iter().any(|h| h.trim().eq_ignore_ascii_case(&t.host))
        {
            return Err(invalid(format!("the host {} is not in the server's list of peer hosts", t.host)));
        }
        if let Some(catalog) = &self.catalog {
            if catalog.port == t.port
                && catalog.database == t.database
                && same_host(&catalog.host, &t.host).await
            {
                return Err(invalid("this is Quiesce's own catalog database; it cannot be a peer"));
            }
        }
        Ok(CheckedPeer {
            kind: PeerKind::Postgres,
            url: input.to_string(),
            location: t.location(),
            connect: Connect::Postgres(Box::new(t)),
        })
    }
}

/// Whether two paths name the same file: the same inode (hard links included) when both exist,
/// else the same resolved path.
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            if (x.dev(), x.ino()) == (y.dev(), y.ino()) {
                return true;
            }
        }
    }
    let resolve = |p: &Path| {
        p.canonicalize().ok().or_else(|| {
            let parent = p.parent()?.canonicalize().ok()?;
            Some(parent.join(p.file_name()?))
        })
    };
    match (resolve(a), resolve(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Whether two host names reach the same machine: equal names, or resolved addresses in common;
/// every loopback address (and a socket directory) counts as this machine.
async fn same_host(a: &str, b: &str) -> bool {
    if a.eq_ignore_ascii_case(b) {
        return true;
    }
    let (x, y) = (addresses(a).await, addresses(b).await);
    let local = |s: &BTreeSet<IpAddr>| s.iter().any(|ip| ip.is_loopback() || ip.is_unspecified());
    (local(&x) && local(&y)) || x.intersection(&y).next().is_some()
}

async fn addresses(host: &str) -> BTreeSet<IpAddr> {
    if host.is_empty() || host.starts_with('/') {
        return [IpAddr::from([127, 0, 0, 1])].into_iter().collect();
    }
    if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return [ip].into_iter().collect();
    }
    let lookup = tokio::net::lookup_host((host, 0));
    match tokio::time::timeout(Duration::from_secs(2), lookup).await {
        Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
        _ => BTreeSet::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_in(dir: &Path) -> PeerRules {
        PeerRules { sqlite_dir: Some(dir.to_path_buf()), environment: BTreeSet::new(), ..Default::default() }
    }

    fn message(r: Result<CheckedPeer, EngineError>) -> String {
        r.expect_err("must be refused").to_string()
    }

    #[tokio::test]
    async fn sqlite_paths_must_stay_inside_the_peers_directory() {
        let root = tempfile::tempdir().unwrap();
        let peers = root.path().join("peers");
        std::fs::create_dir(&peers).unwrap();
        std::fs::write(peers.join("ok.db"), b"").unwrap();
        std::fs::write(root.path().join("outside.db"), b"").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(root.path().join("outside.db"), peers.join("link.db")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(root.path().join("dangling.db"), peers.join("dangling.db")).unwrap();
        let rules = rules_in(&peers);
        let ok = rules.check("ok.db", false).await.unwrap();
        assert_eq!(ok.location, "ok.db");
        assert!(rules.check(&format!("sqlite://{}/ok.db", peers.display()), false).await.is_ok());
        for bad in [
            "../outside.db".to_string(),
            format!("{}/outside.db", root.path().display()),
            format!("{}/../outside.db", peers.display()),
            "link.db".into(),
            "/etc/passwd".into(),
            ".".into(),
        ] {
            let m = message(rules.check(&bad, true).await);
            assert!(
                m.contains("inside the peers directory") || m.contains("not a regular file"),
                "{bad}: {m}"
            );
        }
        let m = message(rules.check("dangling.db", true).await);
        assert!(m.contains("inside the peers directory"), "{m}");
        assert!(!root.path().join("dangling.db").exists(), "nothing created through a dangling link");
    }

    #[tokio::test]
    async fn a_missing_sqlite_file_needs_create_file() {
        let dir = tempfile::tempdir().unwrap();
        let rules = rules_in(dir.path());
        let m = message(rules.check("new.db", false).await);
        assert!(m.contains("create_file"), "{m}");
        assert!(rules.check("new.db", true).await.is_ok());
        assert!(rules.check("no/such/sub/new.db", true).await.is_err());
    }

    #[tokio::test]
    async fn the_catalog_files_are_refused_and_without_a_directory_sqlite_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("quiesce.db"), b"").unwrap();
        let mut rules = rules_in(dir.path());
        rules.forbidden_files =
            sqlite_catalog_files(&format!("sqlite://{}/quiesce.db", dir.path().display()));
        assert!(message(rules.check("quiesce.db", false).await).contains("belongs to Quiesce"));
        assert!(message(rules.check("quiesce.db-wal", true).await).contains("belongs to Quiesce"));
        std::fs::hard_link(dir.path().join("quiesce.db"), dir.path().join("linked.db")).unwrap();
        assert!(message(rules.check("linked.db", false).await).contains("belongs to Quiesce"));
        let none = PeerRules { environment: BTreeSet::new(), ..Default::default() };
        assert!(message(none.check("x.db", true).await).contains("not allowed"));
    }

    #[tokio::test]
    async fn postgres_urls_are_parsed_field_by_field() {
        let rules = PeerRules { environment: BTreeSet::new(), ..Default::default() };
        let ok = rules.check("postgres://bob:pw@db.example:6543/app?sslmode=require", false).await.unwrap();
        assert_eq!(ok.location, "db.example:6543/app");
        for (bad, why) in [
            ("postgres://bob@db/app", "no password"),
            ("postgres://bob:pw@db/app?host=/var/run/postgresql", "not allowed"),
            ("postgres://bob:pw@%2Fvar%2Frun%2Fpostgresql/app", "socket"),
            ("postgres://bob:pw@db/app?sslcert=/etc/ssl/private/key.pem", "--peer-allow-cert-files"),
            ("postgres://bob:pw@db/app?passfile=/root/.pgpass", "not allowed"),
            ("postgres://bob:pw@db/app?options=-c%20x", "not allowed"),
            ("postgres://bob:pw@db/app?sslmode=require&sslmode=disable", "twice"),
            ("postgres://:pw@db/app", "user"),
            ("postgres://bob:pw@db/", "one database"),
            ("postgres://bob:pw@db/app?sslmode=bogus", "sslmode"),
        ] {
            let m = message(rules.check(bad, false).await);
            assert!(m.contains(why), "{bad}: {m}");
            assert!(!m.contains("pw@"), "{m}");
        }
    }

    #[tokio::test]
    async fn ambient_credentials_are_refused_unless_allowed() {
        let mut rules = PeerRules { environment: BTreeSet::new(), ..Default::default() };
        assert!(rules.check("postgres://postgres@127.0.0.1/x", false).await.is_err());
        rules.allow_passwordless = true;
        assert!(rules.check("postgres://postgres@127.0.0.1/x", false).await.is_ok());
        rules.environment.insert("PGPASSWORD".into());
        assert!(message(rules.check("postgres://postgres@127.0.0.1/x", false).await).contains("PGPASSWORD"));
        assert!(rules.check("postgres://postgres:given@127.0.0.1/x", false).await.is_ok());
        rules.environment.insert("PGSSLKEY".into());
        assert!(
            message(rules.check("postgres://postgres:given@127.0.0.1/x", false).await).contains("PGSSLKEY")
        );
    }

    #[tokio::test]
    async fn the_host_allow_list_and_the_catalog_database_apply() {
        let rules = PeerRules {
            environment: BTreeSet::new(),
            allowed_hosts: vec!["db.internal".into(), "127.0.0.1".into()],
            catalog: CatalogLocation::from_catalog_url("postgres://postgres@localhost:5432/quiesce"),
            ..Default::default()
        };
        assert!(message(rules.check("postgres://u:p@other.example/app", false).await)
            .contains("list of peer hosts"));
        assert!(rules.check("postgres://u:p@DB.internal/app", false).await.is_ok());
        let m = message(rules.check("postgres://u:p@127.0.0.1:5432/quiesce", false).await);
        assert!(m.contains("own catalog"), "{m}");
        assert!(rules.check("postgres://u:p@127.0.0.1:5432/other", false).await.is_ok());
    }

    #[test]
    fn a_schema_parameter_is_checked_and_leads_the_search_path() {
        let t = PgTarget::parse("postgres://bob:pw@h:1/d?schema=sales").unwrap();
        assert_eq!(t.schema.as_deref(), Some("sales"));
        let pinned = text_settings_option();
        assert_eq!(t.options().get_options(), Some(format!("{pinned} -c search_path=sales,public").as_str()));
        assert_eq!(t.location(), "h:1/d?schema=sales");
        // Without one, the user's own search_path decides; the text settings are always set.
        let t = PgTarget::parse("postgres://bob:pw@h:1/d").unwrap();
        assert_eq!((t.schema.as_deref(), t.options().get_options()), (None, Some(pinned.as_str())));
        for bad in ["sales,public", "x%20y", "", "a;drop", "_quiesce_x", "s%27"] {
            let e = PgTarget::parse(&format!("postgres://bob:pw@h:1/d?schema={bad}")).unwrap_err();
            assert!(e.to_string().contains("schema name"), "{bad}: {e}");
        }
    }

    #[test]
    fn options_never_come_from_the_environment() {
        let t = PgTarget::parse("postgres://bob@h:1/d").unwrap();
        let o = t.options();
        assert_eq!(
            (o.get_host(), o.get_port(), o.get_username(), o.get_database()),
            ("h", 1, "bob", Some("d"))
        );
        assert!(!format!("{t:?}").contains("secret"));
        let t = PgTarget::parse("postgres://bob:secret@h:1/d").unwrap();
        assert!(!format!("{t:?}").contains("secret"));
    }
}
