//! Verifying a presented credential: an API key (compared by SHA-256 digest in constant
//! time) or an HS256 JWT.

use axum::http::{HeaderMap, header};
use pfs_platform::config::{ApiKeyEntry, AuthConfig, Role};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Who made the request, as far as the credential says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The API key's configured name, or the JWT's `sub`.
    pub name: String,
    /// `None`: a valid credential that grants nothing here.
    pub role: Option<Role>,
}

impl Principal {
    pub fn has(&self, needed: Role) -> bool {
        self.role.is_some_and(|role| role >= needed)
    }
}

/// The configured credentials, parsed once.
pub struct Authenticator {
    keys: Vec<ApiKeyEntry>,
    jwt: Option<(jsonwebtoken::DecodingKey, jsonwebtoken::Validation)>,
}

/// The credential was present but did not verify.
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidCredential;

#[derive(serde::Deserialize)]
struct Claims {
    #[serde(default)]
    sub: String,
    #[serde(default)]
    scope: String,
}

impl Authenticator {
    pub fn from_config(config: &AuthConfig) -> Self {
        let jwt = (!config.jwt_hs256_secret.is_empty()).then(|| {
            let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
            let mut required = vec!["exp"];
            validation.leeway = 30;
            if !config.jwt_issuer.is_empty() {
                validation.set_issuer(&[&config.jwt_issuer]);
                required.push("iss");
            }
            if config.jwt_audience.is_empty() {
                validation.validate_aud = false;
            } else {
                validation.set_audience(&[&config.jwt_audience]);
                required.push("aud");
            }
            validation.set_required_spec_claims(&required);
            (jsonwebtoken::DecodingKey::from_secret(config.jwt_hs256_secret.as_bytes()), validation)
        });
        Self { keys: config.parsed_api_keys(), jwt }
    }

    /// `Ok(None)` when the request carries no credential.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Principal>, InvalidCredential> {
        let Some(token) = presented(headers)? else { return Ok(None) };
        // Our API keys never contain dots; a JWT always has exactly two.
        if token.bytes().filter(|&b| b == b'.').count() == 2 {
            return self.verify_jwt(token).map(Some);
        }
        self.verify_key(token).map(Some)
    }

    fn verify_key(&self, key: &str) -> Result<Principal, InvalidCredential> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.keys
            .iter()
            .find(|entry| bool::from(entry.sha256.ct_eq(&digest)))
            .map(|entry| Principal { name: entry.name.clone(), role: Some(entry.role) })
            .ok_or(InvalidCredential)
    }

    fn verify_jwt(&self, token: &str) -> Result<Principal, InvalidCredential> {
        let (key, validation) = self.jwt.as_ref().ok_or(InvalidCredential)?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|_| InvalidCredential)?.claims;
        let scopes: Vec<&str> = claims.scope.split_ascii_whitespace().collect();
        let role = if scopes.contains(&"portfolio:admin") {
            Some(Role::Admin)
        } else if scopes.contains(&"portfolio:write") {
            Some(Role::Write)
        } else {
            None
        };
        Ok(Principal { name: claims.sub, role })
    }
}

/// The token from `X-API-Key` or `Authorization: Bearer`; a malformed header is an invalid
/// credential rather than an absent one, so a client's mistake is reported, not ignored.
fn presented(headers: &HeaderMap) -> Result<Option<&str>, InvalidCredential> {
    if let Some(value) = headers.get("x-api-key") {
        return value.to_str().map(|key| Some(key.trim())).map_err(|_| InvalidCredential);
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| InvalidCredential)?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err(InvalidCredential),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn authenticator() -> Authenticator {
        let entry = |role: &str, name: &str, key: &str| format!("{role}:{name}:{}", ApiKeyEntry::digest_of(key));
        Authenticator::from_config(&AuthConfig {
            enabled: true,
            protect_writes: true,
            api_keys: vec![entry("write", "importer", "w-key"), entry("admin", "ops", "a-key")],
            jwt_hs256_secret: SECRET.into(),
            jwt_issuer: "issuer".into(),
            jwt_audience: String::new(),
        })
    }

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn jwt(claims: serde_json::Value, secret: &str) -> String {
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key).unwrap()
    }

    fn in_an_hour() -> i64 {
        chrono::Utc::now().timestamp() + 3600
    }

    #[test]
    fn api_keys_verify_by_digest_from_either_header() {
        let auth = authenticator();
        let admin = auth.authenticate(&headers("authorization", "Bearer a-key")).unwrap().unwrap();
        assert_eq!(admin, Principal { name: "ops".into(), role: Some(Role::Admin) });
        let writer = auth.authenticate(&headers("x-api-key", "w-key")).unwrap().unwrap();
        assert!(writer.has(Role::Write) && !writer.has(Role::Admin));
        assert!(admin.has(Role::Write), "admin includes write");
        assert_eq!(auth.authenticate(&headers("x-api-key", "nope")), Err(InvalidCredential));
        assert_eq!(auth.authenticate(&HeaderMap::new()), Ok(None));
        assert_eq!(auth.authenticate(&headers("authorization", "Basic YTpi")), Err(InvalidCredential));
    }

    #[test]
    fn jwts_verify_signature_expiry_issuer_and_scope() {
        let auth = authenticator();
        let bearer = |token: String| headers("authorization", &format!("Bearer {token}"));
        let good = serde_json::json!({"sub": "ci", "scope": "portfolio:write", "exp": in_an_hour(), "iss": "issuer"});
        let principal = auth.authenticate(&bearer(jwt(good.clone(), SECRET))).unwrap().unwrap();
        assert_eq!(principal, Principal { name: "ci".into(), role: Some(Role::Write) });

        let forged = jwt(good, "another-secret-another-secret-xx");
        assert_eq!(auth.authenticate(&bearer(forged)), Err(InvalidCredential));
        let expired = serde_json::json!({"scope": "portfolio:admin", "exp": 1_000_000, "iss": "issuer"});
        assert_eq!(auth.authenticate(&bearer(jwt(expired, SECRET))), Err(InvalidCredential));
        let wrong_issuer = serde_json::json!({"scope": "portfolio:admin", "exp": in_an_hour(), "iss": "other"});
        assert_eq!(auth.authenticate(&bearer(jwt(wrong_issuer, SECRET))), Err(InvalidCredential));
        let no_exp = serde_json::json!({"scope": "portfolio:admin", "iss": "issuer"});
        assert_eq!(auth.authenticate(&bearer(jwt(no_exp, SECRET))), Err(InvalidCredential));
        let no_scope = serde_json::json!({"exp": in_an_hour(), "iss": "issuer"});
        assert_eq!(auth.authenticate(&bearer(jwt(no_scope, SECRET))).unwrap().unwrap().role, None);
    }

    #[test]
    fn unsigned_tokens_are_refused() {
        let auth = authenticator();
        // {"alg":"none"} with a valid-looking payload and no signature.
        let token = "eyJhbGciOiJub25lIn0.eyJzY29wZSI6InBvcnRmb2xpbzphZG1pbiIsImV4cCI6OTk5OTk5OTk5OX0.";
        assert_eq!(auth.authenticate(&headers("authorization", &format!("Bearer {token}"))), Err(InvalidCredential));
    }
}
