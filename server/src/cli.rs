//! One-shot commands: user management from the command line.

use std::io::BufRead;

use quiesce_core::accounts::{Accounts, Origin};
use quiesce_core::storage;

use crate::config::{Cli, UserCommand};
use crate::startup::StartupError;

pub async fn user(args: &Cli, cmd: &UserCommand) -> Result<(), StartupError> {
    match cmd {
        UserCommand::Create { username, role } => {
            let password = read_password()?;
            let catalog = storage::connect(&args.database_url).await?;
            let accounts =
                Accounts::new(catalog.clone()).await.map_err(|e| StartupError::Command(e.to_string()))?;
            let origin = Origin { client: Some("command line".into()), device: None };
            let result = accounts.create_user(None, username, &password, *role, &origin).await;
            catalog.close().await;
            let user = result.map_err(|e| StartupError::Command(e.to_string()))?;
            println!("created user {} with role {}", user.username, user.role);
            Ok(())
        }
    }
}

/// QUIESCE_PASSWORD, or the first line of standard input.
fn read_password() -> Result<String, StartupError> {
    if let Ok(p) = std::env::var("QUIESCE_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| StartupError::Command(format!("cannot read the password from standard input: {e}")))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err(StartupError::Command(
            "no password given: set QUIESCE_PASSWORD or write it on standard input".into(),
        ));
    }
    Ok(password)
}
