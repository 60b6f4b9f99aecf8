//! Secrets at rest: the key that seals peer connection URLs (which carry passwords) before they
//! reach the catalog, and the sealing itself.
//!
//! Owns the key's life: it comes from an environment variable (64 hex digits) or a key file,
//! which is created (mode 0600, 256 random bits) on the first start when absent. Whoever restores
//! the catalog without the key loses the peers' passwords, so the server warns loudly when it
//! creates one. Sealed values are `enc:v1:` + hex(nonce ‖ XChaCha20-Poly1305 ciphertext); values
//! without that prefix are rows written before sealing existed and are read as they are (the
//! server seals them at start-up). Nothing here logs or displays a key or a plaintext.

use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

const PREFIX: &str = "enc:v1:";
/// Binds ciphertexts to their purpose: a sealed peer URL cannot be passed off as another secret.
const CONTEXT: &[u8] = b"quiesce peer url v1";

/// What can go wrong with the key or a sealed value. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret key in {0} is invalid: expected 64 hex digits")]
    BadKey(String),
    #[error("cannot read the key file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot create the key file {path}: {source}")]
    Create { path: PathBuf, source: std::io::Error },
    #[error("a stored secret cannot be opened with this server's key (a different key file?)")]
    Undecryptable,
}

/// Where the key came from (the server logs it, and warns when it was just created).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    Environment(String),
    File(PathBuf),
    CreatedFile(PathBuf),
}

/// Seals and opens secrets with one key. Cheap to share behind an `Arc`.
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

fn parse_key(text: &str, whence: &str) -> Result<[u8; 32], SecretError> {
    let text = text.trim();
    let bytes = crate::engine::peer::hex_decode(text).ok_or_else(|| SecretError::BadKey(whence.into()))?;
    bytes.try_into().map_err(|_| SecretError::BadKey(whence.into()))
}

impl SecretBox {
    pub fn new(key: &[u8; 32]) -> Self {
        SecretBox { cipher: XChaCha20Poly1305::new(key.into()) }
    }

    /// A box with a fresh random key that lives only in memory (tests).
    pub fn ephemeral() -> Self {
        SecretBox { cipher: XChaCha20Poly1305::new(&XChaCha20Poly1305::generate_key(&mut OsRng)) }
    }

    /// The key from `env_value` (the variable named `env_name`) if given, else from `file`,
    /// creating the file with a new random key when it does not exist.
    pub fn load_or_create(
        env_name: &str,
        env_value: Option<&str>,
        file: &Path,
    ) -> Result<(SecretBox, KeyOrigin), SecretError> {
        if let Some(v) = env_value.filter(|v| !v.trim().is_empty()) {
            let key = parse_key(v, env_name)?;
            return Ok((SecretBox::new(&key), KeyOrigin::Environment(env_name.into())));
        }
        match std::fs::read_to_string(file) {
            Ok(text) => {
                let key = parse_key(&text, &file.display().to_string())?;
                Ok((SecretBox::new(&key), KeyOrigin::File(file.to_path_buf())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match create_key_file(file) {
                Ok(key) => Ok((SecretBox::new(&key), KeyOrigin::CreatedFile(file.to_path_buf()))),
                // Another process on the same catalog created it first: use theirs.
                Err(SecretError::Create { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    let text = std::fs::read_to_string(file)
                        .map_err(|source| SecretError::Read { path: file.to_path_buf(), source })?;
                    let key = parse_key(&text, &file.display().to_string())?;
                    Ok((SecretBox::new(&key), KeyOrigin::File(file.to_path_buf())))
                }
                Err(e) => Err(e),
            },
            Err(source) => Err(SecretError::Read { path: file.to_path_buf(), source }),
        }
    }

    /// Whether `stored` is a sealed value (rather than a row written before sealing).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    pub fn seal(&self, plain: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg: plain.as_bytes(), aad: CONTEXT })
            // Encryption fails only for inputs beyond 256 GiB.
            .unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}", crate::engine::peer::hex_encode(&bytes))
    }

    /// Opens a sealed value; a value without the prefix (an old plain row) is returned as it is.
    pub fn open(&self, stored: &str) -> Result<String, SecretError> {
        let Some(hex) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let bytes = crate::engine::peer::hex_decode(hex).ok_or(SecretError::Undecryptable)?;
        if bytes.len() < 24 + 16 {
            return Err(SecretError::Undecryptable);
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: CONTEXT })
            .map_err(|_| SecretError::Undecryptable)?;
        String::from_utf8(plain).map_err(|_| SecretError::Undecryptable)
    }
}

fn create_key_file(path: &Path) -> Result<[u8; 32], SecretError> {
    let err = |source| SecretError::Create { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let key: [u8; 32] = XChaCha20Poly1305::generate_key(&mut OsRng).into();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(err)?;
    writeln!(f, "{}", crate::engine::peer::hex_encode(&key)).map_err(err)?;
    f.sync_all().map_err(err)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_round_trip_and_hide_the_plaintext() {
        let b = SecretBox::ephemeral();
        let sealed = b.seal("postgres://u:hunter2@h/d");
        assert!(SecretBox::is_sealed(&sealed));
        assert!(!sealed.contains("hunter2"));
        assert_ne!(sealed, b.seal("postgres://u:hunter2@h/d"), "a fresh nonce each time");
        assert_eq!(b.open(&sealed).unwrap(), "postgres://u:hunter2@h/d");
        assert_eq!(b.open("sqlite:///old/plain.db").unwrap(), "sqlite:///old/plain.db");
        assert!(matches!(SecretBox::ephemeral().open(&sealed), Err(SecretError::Undecryptable)));
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('0') { '1' } else { '0' });
        assert!(b.open(&tampered).is_err());
    }

    #[test]
    fn the_key_file_is_created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/quiesce.key");
        let (a, origin) = SecretBox::load_or_create("QUIESCE_SECRET_KEY", None, &path).unwrap();
        assert_eq!(origin, KeyOrigin::CreatedFile(path.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let (b, origin) = SecretBox::load_or_create("QUIESCE_SECRET_KEY", None, &path).unwrap();
        assert_eq!(origin, KeyOrigin::File(path.clone()));
        assert_eq!(b.open(&a.seal("x")).unwrap(), "x");
        let env_key = "11".repeat(32);
        let (c, origin) = SecretBox::load_or_create("QUIESCE_SECRET_KEY", Some(&env_key), &path).unwrap();
        assert_eq!(origin, KeyOrigin::Environment("QUIESCE_SECRET_KEY".into()));
        assert!(c.open(&a.seal("x")).is_err(), "the variable wins over the file");
        let bad = SecretBox::load_or_create("QUIESCE_SECRET_KEY", Some("short"), &path).unwrap_err();
        assert!(!bad.to_string().contains("short"), "{bad}");
    }
}
