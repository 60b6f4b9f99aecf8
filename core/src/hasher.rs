//! The password-hashing workers: a fixed set of threads, each owning the argon2 working memory
//! (19 MiB with the default parameters) for one hash, allocated once when the thread starts.
//!
//! Why: argon2 needs its whole memory cost for every hash. Allocating it per request on the
//! blocking pool let the process grow by one allocation per concurrent request, and the
//! allocator kept much of it afterwards. With one buffer per worker, hashing memory is exactly
//! `workers × m_cost` for the life of the process, however many requests arrive; callers bound
//! how many jobs wait (see `accounts::Accounts`).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{oneshot, OwnedSemaphorePermit};

/// A job, with the caller's slot permit (if any): it is released when the worker is done with
/// the job, not when the caller stops waiting, so cancelled requests cannot pile up jobs.
enum Job {
    Verify { password: String, phc: String, reply: oneshot::Sender<bool>, slot: Option<OwnedSemaphorePermit> },
    Hash { password: String, reply: oneshot::Sender<Option<String>>, slot: Option<OwnedSemaphorePermit> },
}

/// A pool of hashing threads. Cloning shares the pool; the threads end when the last clone is
/// dropped.
#[derive(Clone)]
pub struct Hasher {
    jobs: mpsc::Sender<Job>,
}

impl Hasher {
    /// Starts `workers` threads, each with the memory for one hash with the default parameters.
    pub fn start(workers: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("password-hash-{i}")).spawn(move || {
                let mut memory = vec![Block::default(); Params::default().block_count()];
                loop {
                    let job = {
                        let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
                        rx.recv()
                    };
                    match job {
                        // The slot is free again before the caller hears the answer, so a caller
                        // that goes straight on to another hash finds it free.
                        Ok(Job::Verify { password, phc, reply, slot }) => {
                            let ok = verify(&password, &phc, &mut memory);
                            drop(slot);
                            let _ = reply.send(ok);
                        }
                        Ok(Job::Hash { password, reply, slot }) => {
                            let phc = hash(&password, &mut memory);
                            drop(slot);
                            let _ = reply.send(phc);
                        }
                        Err(_) => break,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password-hashing thread");
            }
        }
        Self { jobs: tx }
    }

    /// Whether `password` matches the PHC string `phc`. A malformed hash never matches.
    pub async fn verify(&self, password: &str, phc: &str, slot: Option<OwnedSemaphorePermit>) -> bool {
        let (reply, answer) = oneshot::channel();
        let job = Job::Verify { password: password.to_owned(), phc: phc.to_owned(), reply, slot };
        if self.jobs.send(job).is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }

    /// An argon2id PHC string for `password` with a fresh salt; `None` if hashing failed.
    pub async fn hash(&self, password: &str, slot: Option<OwnedSemaphorePermit>) -> Option<String> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job::Hash { password: password.to_owned(), reply, slot }).ok()?;
        answer.await.ok().flatten()
    }
}

/// Grows `memory` only for a stored hash with a larger memory cost than the default (an old or
/// imported hash); the default never reallocates.
fn blocks(memory: &mut Vec<Block>, params: &Params) {
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
}

fn verify(password: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(parsed.algorithm), Params::try_from(&parsed))
    else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
        None => Version::default(),
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
    blocks(memory, &params);
    let mut out = vec![0u8; expected.len()];
    let n = params.block_count();
    if Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..n])
        .is_err()
    {
        return false;
    }
    // `Output` compares in constant time.
    Output::new(&out).is_ok_and(|computed| computed == expected)
}

fn hash(password: &str, memory: &mut Vec<Block>) -> Option<String> {
    let params = Params::default();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_buf).ok()?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    blocks(memory, &params);
    let n = params.block_count();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, &mut memory[..n])
        .ok()?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).ok()?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).ok()?),
    };
    Some(phc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[tokio::test]
    async fn the_pool_agrees_with_the_argon2_crate_both_ways() {
        let pool = Hasher::start(2);
        let ours = pool.hash("correct horse battery", None).await.unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{ours}");
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse battery", &parsed).is_ok());
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default().hash_password(b"correct horse battery", &salt).unwrap();
        assert!(pool.verify("correct horse battery", &theirs.to_string(), None).await);
        assert!(!pool.verify("wrong horse battery", &theirs.to_string(), None).await);
        assert!(!pool.verify("anything", "not-a-hash", None).await);
        // A stronger stored hash (more memory) still verifies.
        let strong =
            Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(32 * 1024, 2, 1, None).unwrap())
                .hash_password(b"pw-strong-0", &salt)
                .unwrap();
        assert!(pool.verify("pw-strong-0", &strong.to_string(), None).await);
    }
}
