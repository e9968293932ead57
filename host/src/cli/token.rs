//! `hyphae token create | list | revoke`: API tokens, made on the database itself (how the first
//! admin token comes to be), honoured by every host that shares it.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::exit::{CommandResult, Failure};
use super::table::Table;
use crate::auth::{name_problem, NewToken, Role};
use crate::store::{AuditEntry, Store, StoreError};

/// Options of `hyphae token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
    /// Database of the hosts: SQLite file (default `hyphae.db`) or `postgres://...`.
    #[arg(long, env = "HYPHAE_DB", default_value = "hyphae.db", value_name = "URL", global = true)]
    pub db: String,
}

/// What to do with tokens.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it (once: only its digest is stored).
    Create {
        /// admin, operator, submitter or reader.
        #[arg(long, value_enum)]
        role: Role,
        /// Name to list and revoke it by (default: ROLE-ID).
        #[arg(long)]
        name: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id or name: every host refuses it from its next request on.
    Revoke {
        /// Token id or name.
        token: String,
    },
}

pub(super) async fn command(args: TokenArgs) -> CommandResult {
    let store = Store::connect(&args.db).await.map_err(|e| opening_failed(&args.db, &e))?;
    let done = match args.command {
        TokenCommand::Create { role, name } => create(&store, role, name).await,
        TokenCommand::List => list(&store).await,
        TokenCommand::Revoke { token } => revoke(&store, &token).await,
    };
    store.close().await;
    done
}

fn opening_failed(db: &str, e: &StoreError) -> Failure {
    let db = crate::store::redact_url(db);
    Failure::unavailable(format!("cannot open the database {db}: {e}: give the hosts' database with --db or HYPHAE_DB"))
}

/// An entry of the audit log for a token command run on the database.
fn audited(action: &str, target: Option<String>) -> AuditEntry {
    AuditEntry { caller: "cli".into(), action: action.into(), target, outcome: "done", client: None, detail: None }
}

async fn create(store: &Store, role: Role, name: Option<String>) -> CommandResult {
    let token = NewToken::generate().map_err(|e| Failure::software(format!("cannot make a random token: {e}")))?;
    let name = name.unwrap_or_else(|| format!("{role}-{}", token.id));
    if let Some(problem) = name_problem(&name) {
        return Err(Failure::data(problem));
    }
    let (secret, id) = (token.secret.clone(), token.id.clone());
    store.create_token(token, &name, role, audited("token create", None)).await.map_err(|e| match e {
        StoreError::Conflict(message) => Failure::data(message),
        e => Failure::unavailable(format!("cannot store the token: {e}")),
    })?;
    eprintln!("token {id} `{name}` with role {role}; it is shown this once, keep it now:");
    println!("{secret}");
    eprintln!("use it with: export HYPHAE_TOKEN=<the token>   (or `Authorization: Bearer <the token>`)");
    Ok(ExitCode::SUCCESS)
}

async fn list(store: &Store) -> CommandResult {
    let tokens = store.tokens().await.map_err(|e| Failure::unavailable(format!("cannot read the tokens: {e}")))?;
    let mut t = Table::new(&["ID", "NAME", "ROLE", "CREATED", "BY", "REVOKED"]);
    for token in tokens {
        t.row(vec![
            token.token_id,
            token.name,
            token.role.to_string(),
            token.created_at,
            token.created_by,
            token.revoked_at.unwrap_or_else(|| "-".into()),
        ]);
    }
    print!("{}", t.render());
    Ok(ExitCode::SUCCESS)
}

async fn revoke(store: &Store, key: &str) -> CommandResult {
    let revoked = store
        .revoke_tokens(key, audited("token revoke", Some(key.to_string())))
        .await
        .map_err(|e| Failure::unavailable(format!("cannot revoke the token: {e}")))?;
    if revoked.is_empty() {
        return Err(Failure::data(format!("no token in force has the id or name `{key}`: see `hyphae token list`")));
    }
    println!("revoked {}", revoked.join(", "));
    Ok(ExitCode::SUCCESS)
}
