//! Sign-in under attack and password rules, against real catalogs (each case on SQLite and
//! Postgres). Hashes are counted by `Accounts::password_verifications`, not inferred from timing.

use std::sync::Arc;
use std::time::Instant;

use quiesce_core::accounts::{AccountError, Accounts, Origin, Throttle};
use quiesce_core::auth::{Role, User};
use quiesce_core::testing::TestDb;

const PASSWORD: &str = "a sturdy test passphrase";

macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() {
                   let db = quiesce_core::testing::TestDb::new(quiesce_core::Backend::Sqlite).await;
                   super::$case(&db).await
               } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() {
                   let db = quiesce_core::testing::TestDb::new(quiesce_core::Backend::Postgres).await;
                   super::$case(&db).await
               } )*
        }
    };
}

on_both_backends!(
    parallel_wrong_passwords_get_at_most_the_promised_number_of_hash_checks,
    a_full_set_of_hash_slots_answers_busy_instead_of_queueing,
    a_browser_that_signed_in_before_waits_for_a_slot_instead_of_busy,
    a_burst_of_failures_does_not_lock_out_the_right_password_from_a_known_browser,
    failures_from_one_address_do_not_lock_out_other_addresses,
    a_password_set_by_an_admin_must_be_changed_and_the_change_checks_the_rules,
);

fn client(addr: &str) -> Origin {
    Origin { client: Some(addr.into()), device: None }
}

async fn user(accounts: &Accounts, name: &str, role: Role) -> User {
    accounts.create_user(None, name, PASSWORD, role, &client("cli")).await.unwrap()
}

async fn parallel_wrong_passwords_get_at_most_the_promised_number_of_hash_checks(db: &TestDb) {
    // Plenty of hash slots, so only the throttle limits what runs.
    let accounts = Arc::new(Accounts::with_hash_slots(db.catalog().await, 400).await.unwrap());
    user(&accounts, "vera", Role::Viewer).await;
    let before = accounts.password_verifications();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..300 {
        let accounts = accounts.clone();
        tasks.push(tokio::spawn(async move {
            accounts.sign_in("vera", &format!("wrong guess {i}"), &client("10.6.6.6")).await
        }));
    }
    let (mut invalid, mut throttled) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Err(AccountError::InvalidCredentials { .. }) => invalid += 1,
            Err(AccountError::Throttled(_)) => throttled += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    let hashes = accounts.password_verifications() - before;
    // The promise: 5 free failures, then one more after 1 s, 2 s, 4 s … after the last one.
    let elapsed = started.elapsed().as_secs_f64();
    let promised = u64::from(Throttle::USER_CLIENT_ALLOWANCE) + (elapsed + 1.0).log2().floor() as u64;
    assert!(
        hashes <= promised,
        "{hashes} full password checks for 300 parallel guesses (promised {promised})"
    );
    assert_eq!(hashes, invalid, "every checked guess failed; the others were throttled before hashing");
    assert_eq!(invalid + throttled, 300);
}

async fn a_full_set_of_hash_slots_answers_busy_instead_of_queueing(db: &TestDb) {
    let accounts = Arc::new(Accounts::with_hash_slots(db.catalog().await, 1).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..40 {
        let accounts = accounts.clone();
        // Distinct names and addresses: the throttle lets every one through.
        tasks.push(tokio::spawn(async move {
            accounts.sign_in(&format!("user{i}"), "not the password", &client(&format!("10.1.0.{i}"))).await
        }));
    }
    let mut busy = 0;
    for t in tasks {
        match t.await.unwrap() {
            Err(AccountError::Busy) => busy += 1,
            Err(AccountError::InvalidCredentials { .. }) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert!(busy > 0, "with one slot, parallel sign-ins must be refused as busy");
    assert_eq!(accounts.password_verifications(), 40 - busy as u64, "a busy answer costs no hash");
    // A refused attempt was not counted: the same client may go on.
    assert!(matches!(
        accounts.sign_in("user0", "not the password", &client("10.1.0.0")).await,
        Err(AccountError::InvalidCredentials { .. })
    ));
}

async fn a_browser_that_signed_in_before_waits_for_a_slot_instead_of_busy(db: &TestDb) {
    let accounts = Arc::new(Accounts::with_hash_slots(db.catalog().await, 1).await.unwrap());
    user(&accounts, "vera", Role::Viewer).await;
    let first = accounts.sign_in("vera", PASSWORD, &client("10.0.0.1")).await.unwrap();
    let browser = Origin { client: Some("10.0.0.1".into()), device: Some(first.device_token) };
    let mut flood = Vec::new();
    for i in 0..40 {
        let accounts = accounts.clone();
        flood.push(tokio::spawn(async move {
            accounts.sign_in(&format!("user{i}"), "not the password", &client(&format!("10.1.0.{i}"))).await
        }));
    }
    let vera = {
        let accounts = accounts.clone();
        tokio::spawn(async move { accounts.sign_in("vera", PASSWORD, &browser).await })
    };
    let mut busy = 0;
    for t in flood {
        if matches!(t.await.unwrap(), Err(AccountError::Busy)) {
            busy += 1;
        }
    }
    assert!(busy > 0, "the flood fills the single slot");
    vera.await.unwrap().expect("her known browser waits for a slot and gets in");
}

async fn a_burst_of_failures_does_not_lock_out_the_right_password_from_a_known_browser(db: &TestDb) {
    let accounts = Accounts::new(db.catalog().await).await.unwrap();
    user(&accounts, "vera", Role::Viewer).await;
    // Vera signs in once from her browser, which keeps the device token.
    let first = accounts.sign_in("vera", PASSWORD, &client("10.0.0.1")).await.unwrap();
    let browser = Origin { client: Some("10.0.0.1".into()), device: Some(first.device_token.clone()) };
    // An attacker fails for her from many addresses, and from hers.
    for i in 0..(Throttle::USER_ALLOWANCE + 5) {
        let _ = accounts.sign_in("vera", "guess", &client(&format!("10.9.{}.{}", i / 200, i % 200))).await;
    }
    for _ in 0..Throttle::CLIENT_ALLOWANCE {
        let _ = accounts.sign_in("vera", "guess", &client("10.0.0.1")).await;
    }
    assert!(
        matches!(
            accounts.sign_in("vera", PASSWORD, &client("10.0.0.2")).await,
            Err(AccountError::Throttled(_))
        ),
        "a browser she never used is slowed"
    );
    let again = accounts.sign_in("vera", PASSWORD, &browser).await.expect("her own browser gets in");
    assert_eq!(again.device_token, first.device_token, "a trusted token is kept");
    // A device token is worth nothing for another user.
    user(&accounts, "otto", Role::Viewer).await;
    let stolen = Origin { client: Some("10.9.0.1".into()), device: Some(first.device_token) };
    assert!(matches!(
        accounts.sign_in("otto", "guess", &stolen).await,
        Err(AccountError::InvalidCredentials { .. }) | Err(AccountError::Throttled(_))
    ));
}

async fn failures_from_one_address_do_not_lock_out_other_addresses(db: &TestDb) {
    let accounts = Accounts::new(db.catalog().await).await.unwrap();
    user(&accounts, "vera", Role::Viewer).await;
    let mut left = Vec::new();
    for _ in 0..Throttle::USER_CLIENT_ALLOWANCE {
        match accounts.sign_in("vera", "guess", &client("10.6.6.6")).await {
            Err(AccountError::InvalidCredentials { attempts_left }) => left.push(attempts_left),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(left, [4, 3, 2, 1, 0], "each failure says how many remain before the slowdown");
    assert!(matches!(
        accounts.sign_in("vera", PASSWORD, &client("10.6.6.6")).await,
        Err(AccountError::Throttled(_))
    ));
    accounts.sign_in("vera", PASSWORD, &client("10.0.0.1")).await.expect("another address is not locked out");
    // Unknown and known usernames answer the same, counts included.
    let unknown = accounts.sign_in("nobody", "guess", &client("10.2.0.1")).await.unwrap_err();
    let known = accounts.sign_in("vera", "guess", &client("10.2.0.2")).await.unwrap_err();
    assert_eq!(format!("{unknown:?}"), format!("{known:?}"));
}

async fn a_password_set_by_an_admin_must_be_changed_and_the_change_checks_the_rules(db: &TestDb) {
    let accounts = Accounts::new(db.catalog().await).await.unwrap();
    let root = user(&accounts, "root", Role::Admin).await;
    assert!(!root.must_change_password, "a user made at the command line chose their own password");
    let dora = accounts.create_user(Some(&root), "dora", PASSWORD, Role::Viewer, &client("a")).await.unwrap();
    assert!(dora.must_change_password);
    let o = client("10.0.0.3");
    let err = accounts.change_password(&dora, "wrong current", "a fresh passphrase", &o).await.unwrap_err();
    assert!(matches!(err, AccountError::WrongCurrentPassword), "{err:?}");
    for (new, says) in [
        ("short", "at least 10"),
        ("password123", "common"),
        ("Qwertyuiop", "common"),
        ("dora-forever-and-ever", "username"),
        (PASSWORD, "differ"),
    ] {
        let err = accounts.change_password(&dora, PASSWORD, new, &o).await.unwrap_err();
        assert!(
            matches!(&err, AccountError::Invalid(m) if m.starts_with("new_password:") && m.contains(says)),
            "{new}: {err:?}"
        );
    }
    let before = db.catalog().await.user_by_id(&dora.id).await.unwrap().unwrap().session_epoch;
    let changed = accounts.change_password(&dora, PASSWORD, "a fresh passphrase", &o).await.unwrap();
    assert!(!changed.user.must_change_password);
    assert_eq!(changed.session_epoch, before + 1, "other sessions end");
    accounts.sign_in("dora", "a fresh passphrase", &o).await.unwrap();
    // A reset by an admin sets the flag again; admins cannot pick a common password either.
    let err = accounts.reset_password(Some(&root), &dora.id, "iloveyou2024", &o).await.unwrap_err();
    assert!(matches!(err, AccountError::Invalid(_)));
    let reset = accounts.reset_password(Some(&root), &dora.id, "another sturdy phrase", &o).await.unwrap();
    assert!(reset.must_change_password);
}
