//! `[auth]`: who may write and who may administer. Off by default, because the original had
//! no authentication and its clients send none.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Checks credentials at all. Admin routes answer 403 while this is off.
    pub enabled: bool,
    /// With `enabled`: writes (POST, PUT, PATCH, DELETE under `/api/`) need the write role.
    pub protect_writes: bool,
    /// API keys as `role:name:sha256-hex-of-the-key`. Only digests are configured, so a leaked
    /// config file or `config print` does not leak a usable key.
    pub api_keys: Vec<String>,
    /// HS256 secret for JWT bearer tokens; empty disables JWTs. Redacted by `config print`.
    pub jwt_hs256_secret: String,
    /// Required `iss` claim of JWTs, when set.
    pub jwt_issuer: String,
    /// Required `aud` claim of JWTs, when set.
    pub jwt_audience: String,
    /// The longest a JWT may live (`exp - iat`); tokens must carry `iat`. A stolen token with
    /// a far-away expiry is then useless after this long.
    #[serde(with = "humantime_serde")]
    pub jwt_max_lifetime: std::time::Duration,
    /// Failed authentication attempts one client address may make within `failure_window`;
    /// past them, requests from it that carry a credential get 429 until the window ends.
    /// 0 turns the throttle off.
    pub max_failures: u32,
    #[serde(with = "humantime_serde")]
    pub failure_window: std::time::Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            protect_writes: false,
            api_keys: Vec::new(),
            jwt_hs256_secret: String::new(),
            jwt_issuer: String::new(),
            jwt_audience: String::new(),
            jwt_max_lifetime: std::time::Duration::from_secs(24 * 3600),
            max_failures: 10,
            failure_window: std::time::Duration::from_secs(60),
        }
    }
}

/// What a credential allows. Admin includes write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Write,
    Admin,
}

impl Role {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "write" => Some(Self::Write),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// One configured API key: its role, a name for logs, and the SHA-256 digest of the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyEntry {
    pub role: Role,
    pub name: String,
    pub sha256: [u8; 32],
}

impl ApiKeyEntry {
    /// Parses `role:name:hex`; the error names what is wrong without echoing the digest.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let mut parts = entry.trim().splitn(3, ':');
        let (role, name, digest) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let role = Role::parse(role).ok_or_else(|| format!("role {role:?} is not \"write\" or \"admin\""))?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(format!("name {name:?} must be non-empty letters, digits, '-', '_' or '.'"));
        }
        let sha256 = parse_digest(digest)
            .ok_or_else(|| format!("key {name:?}: the digest must be 64 hex digits (SHA-256 of the key)"))?;
        Ok(Self { role, name: name.to_owned(), sha256 })
    }

    /// The digest of `key` as an entry carries it: SHA-256, lower-case hex.
    pub fn digest_of(key: &str) -> String {
        use sha2::Digest as _;
        sha2::Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(digest)
}

impl AuthConfig {
    /// The parsed API keys; validation has already rejected malformed ones.
    pub fn parsed_api_keys(&self) -> Vec<ApiKeyEntry> {
        self.api_keys.iter().filter_map(|entry| ApiKeyEntry::parse(entry).ok()).collect()
    }

    pub(super) fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .api_keys
            .iter()
            .filter_map(|entry| ApiKeyEntry::parse(entry).err())
            .map(|why| format!("auth.api_keys: {why}"))
            .collect();
        if !self.jwt_hs256_secret.is_empty() && self.jwt_hs256_secret.len() < 32 {
            problems.push("auth.jwt_hs256_secret: use at least 32 bytes".into());
        }
        if self.max_failures > 0 && self.failure_window < std::time::Duration::from_secs(1) {
            problems.push("auth.failure_window: must be at least 1s".into());
        }
        if self.enabled && self.api_keys.is_empty() && self.jwt_hs256_secret.is_empty() {
            problems
                .push("auth.enabled: configure auth.api_keys or auth.jwt_hs256_secret, or nobody can sign in".into());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn api_key_entries_parse_role_name_and_digest() {
        let entry = ApiKeyEntry::parse(&format!("admin:ops-1:{DIGEST}")).unwrap();
        assert_eq!(entry.role, Role::Admin);
        assert_eq!(entry.name, "ops-1");
        assert_eq!(entry.sha256[..3], [0x9f, 0x86, 0xd0]);
    }

    #[test]
    fn malformed_entries_are_explained() {
        assert!(ApiKeyEntry::parse(&format!("root:ops:{DIGEST}")).unwrap_err().contains("role"));
        assert!(ApiKeyEntry::parse(&format!("write::{DIGEST}")).unwrap_err().contains("name"));
        assert!(ApiKeyEntry::parse("write:ops:abc").unwrap_err().contains("64 hex"));
        assert!(ApiKeyEntry::parse(&format!("write:ops:{}", "é".repeat(32))).is_err());
    }

    #[test]
    fn enabled_without_credentials_is_refused() {
        let config = AuthConfig { enabled: true, ..AuthConfig::default() };
        assert_eq!(config.problems().len(), 1);
        let short = AuthConfig { jwt_hs256_secret: "short".into(), ..AuthConfig::default() };
        assert!(short.problems()[0].contains("32 bytes"));
    }
}
