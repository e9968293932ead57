//! Who may call the API: bearer tokens, the role each carries, and what a role permits.
//!
//! A token is shown once, when it is made; the database keeps only its SHA-256 digest, so every
//! host sharing the database honours it and nobody can read it back. Pure code: the store keeps
//! the records, the API checks requests against them.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a request does, as far as access is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read workflows, events, plugins, workers, statistics (and metrics unless public).
    Read,
    /// Submit workflows.
    Submit,
    /// Pause, resume, cancel, roll back workflows, change their budgets.
    Operate,
    /// Install plugins, delete history, manage tokens, read the audit log.
    Admin,
}

/// The role of a token: a fixed set of permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Controls of running work, and reads.
    Operator,
    /// Submissions, and reads.
    Submitter,
    /// Reads only.
    Reader,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Operator, Role::Submitter, Role::Reader];

    /// Whether this role may do `p`.
    pub fn allows(self, p: Permission) -> bool {
        match self {
            Role::Admin => true,
            Role::Operator => matches!(p, Permission::Read | Permission::Operate),
            Role::Submitter => matches!(p, Permission::Read | Permission::Submit),
            Role::Reader => p == Permission::Read,
        }
    }

    /// The role's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Submitter => "submitter",
            Role::Reader => "reader",
        }
    }

    /// The least powerful roles that permit `p`, for a refusal's message.
    pub fn needed_for(p: Permission) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| r.allows(p)).collect()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored role that is none of ours.
#[derive(Debug, thiserror::Error)]
#[error("unknown role `{0}`: use admin, operator, submitter or reader")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| UnknownRole(s.to_string()))
    }
}

/// Prefix of every token, so that a token pasted somewhere it should not be is recognisable.
pub const TOKEN_PREFIX: &str = "hyphae_";

/// A token as made: the secret (shown once) and what is stored of it.
pub struct NewToken {
    /// `hyphae_` and 64 hex digits of 32 random bytes.
    pub secret: String,
    /// SHA-256 of the secret, hex.
    pub hash: String,
    /// Short public id (the first 12 hex digits of the hash), for listing and revoking.
    pub id: String,
}

impl NewToken {
    /// A fresh token from the operating system's random source.
    pub fn generate() -> Result<NewToken, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let secret = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
        let hash = token_hash(&secret);
        Ok(NewToken { id: hash[..12].to_string(), hash, secret })
    }
}

/// The stored form of a presented token.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether requests must carry a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Every request (but health and the API document) needs a valid token.
    Required,
    /// The host serves loopback only: requests without a token are allowed as long as no token
    /// exists; once one does, every request needs one. A presented token is always checked.
    UntilTokensExist,
    /// Nothing is checked (`--insecure-no-auth`).
    Off,
}

impl AuthMode {
    /// The mode of a host listening on `listen`: loopback only may start open.
    pub fn for_listener(listen: SocketAddr, insecure_no_auth: bool) -> AuthMode {
        if insecure_no_auth {
            AuthMode::Off
        } else if listen.ip().is_loopback() {
            AuthMode::UntilTokensExist
        } else {
            AuthMode::Required
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's id, or `local` (open loopback host) or `anonymous` (no checks).
    pub token_id: String,
    /// The token's name.
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// A caller let in without a token: with every permission, since the host trusts its
    /// loopback clients until a token exists (or was told to trust everyone).
    pub fn unauthenticated(mode: AuthMode) -> Caller {
        let who = if mode == AuthMode::Off { "anonymous" } else { "local" };
        Caller { token_id: who.into(), name: who.into(), role: Role::Admin }
    }

    /// Whether the caller presented a token (rather than being let in without one).
    pub fn has_token(&self) -> bool {
        !matches!(self.token_id.as_str(), "local" | "anonymous")
    }
}

/// The token of an `Authorization: Bearer TOKEN` header value, if it is one.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// A token name a human can type and read: 1 to 64 of letters, digits, `-`, `_`, `.`.
pub fn name_problem(name: &str) -> Option<String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok) {
        return Some(format!(
            "invalid token name `{}`: use 1 to 64 letters, digits, `-`, `_` or `.`",
            name.escape_default()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_permit_what_the_issue_says() {
        use Permission::*;
        let table = [
            (Role::Admin, [true, true, true, true]),
            (Role::Operator, [true, false, true, false]),
            (Role::Submitter, [true, true, false, false]),
            (Role::Reader, [true, false, false, false]),
        ];
        for (role, expected) in table {
            let got = [Read, Submit, Operate, Admin].map(|p| role.allows(p));
            assert_eq!(got, expected, "{role}");
        }
        assert_eq!(Role::needed_for(Operate), vec![Role::Admin, Role::Operator]);
        assert_eq!("submitter".parse::<Role>().unwrap(), Role::Submitter);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn tokens_are_random_and_only_their_hash_identifies_them() {
        let a = NewToken::generate().unwrap();
        let b = NewToken::generate().unwrap();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(TOKEN_PREFIX) && a.secret.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(token_hash(&a.secret), a.hash);
        assert!(!a.hash.contains(&a.secret[TOKEN_PREFIX.len()..]));
        assert_eq!(a.id, a.hash[..12]);
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("abc"), None);
    }

    #[test]
    fn only_loopback_starts_open() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(AuthMode::for_listener(at("127.0.0.1:1"), false), AuthMode::UntilTokensExist);
        assert_eq!(AuthMode::for_listener(at("[::1]:1"), false), AuthMode::UntilTokensExist);
        assert_eq!(AuthMode::for_listener(at("0.0.0.0:1"), false), AuthMode::Required);
        assert_eq!(AuthMode::for_listener(at("10.1.2.3:1"), false), AuthMode::Required);
        assert_eq!(AuthMode::for_listener(at("0.0.0.0:1"), true), AuthMode::Off);
    }

    #[test]
    fn names() {
        assert!(name_problem("ci-bot.1").is_none());
        assert!(name_problem("").is_some());
        assert!(name_problem("a b").is_some());
        assert!(name_problem(&"x".repeat(65)).is_some());
    }
}
