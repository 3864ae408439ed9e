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
    /// `exp - iat` may not exceed this, in seconds.
    jwt_max_lifetime: i64,
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
    exp: i64,
    iat: i64,
}

impl Authenticator {
    pub fn from_config(config: &AuthConfig) -> Self {
        let jwt = (!config.jwt_hs256_secret.is_empty()).then(|| {
            let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
            let mut required = vec!["exp", "iat"];
            validation.leeway = LEEWAY_SECONDS.unsigned_abs();
            validation.validate_nbf = true;
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
        let jwt_max_lifetime = i64::try_from(config.jwt_max_lifetime.as_secs()).unwrap_or(i64::MAX);
        Self { keys: config.parsed_api_keys(), jwt, jwt_max_lifetime }
    }

    /// Whether the request carries a credential at all (valid or not), without looking at it.
    pub fn presents_credential(headers: &HeaderMap) -> bool {
        headers.contains_key("x-api-key") || headers.contains_key(header::AUTHORIZATION)
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
        if has_critical_header(token) {
            return Err(InvalidCredential);
        }
        let claims = jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|_| InvalidCredential)?.claims;
        let issued_in_future = claims.iat > chrono::Utc::now().timestamp() + LEEWAY_SECONDS;
        if issued_in_future || claims.exp.saturating_sub(claims.iat) > self.jwt_max_lifetime {
            return Err(InvalidCredential);
        }
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

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY_SECONDS: i64 = 30;

/// RFC 7515 §4.1.11: a recipient must refuse a token whose `crit` header names an extension
/// it does not understand; this service understands none. jsonwebtoken's `Header` drops
/// unknown fields, so the header is read here; an unreadable one is left for `decode` to
/// refuse.
fn has_critical_header(token: &str) -> bool {
    use base64::Engine;
    let Some(header) = token.split('.').next() else { return false };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header) else { return false };
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes).is_ok_and(|h| h.contains_key("crit"))
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
            jwt_max_lifetime: std::time::Duration::from_secs(2 * 3600),
            ..AuthConfig::default()
        })
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
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
        now() + 3600
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
        let good = serde_json::json!({"sub": "ci", "scope": "portfolio:write", "exp": in_an_hour(), "iat": now(), "iss": "issuer"});
        let principal = auth.authenticate(&bearer(jwt(good.clone(), SECRET))).unwrap().unwrap();
        assert_eq!(principal, Principal { name: "ci".into(), role: Some(Role::Write) });

        let forged = jwt(good, "another-secret-another-secret-xx");
        assert_eq!(auth.authenticate(&bearer(forged)), Err(InvalidCredential));
        let expired =
            serde_json::json!({"scope": "portfolio:admin", "exp": 1_000_000, "iat": 999_000, "iss": "issuer"});
        assert_eq!(auth.authenticate(&bearer(jwt(expired, SECRET))), Err(InvalidCredential));
        let wrong_issuer =
            serde_json::json!({"scope": "portfolio:admin", "exp": in_an_hour(), "iat": now(), "iss": "other"});
        assert_eq!(auth.authenticate(&bearer(jwt(wrong_issuer, SECRET))), Err(InvalidCredential));
        let no_exp = serde_json::json!({"scope": "portfolio:admin", "iat": now(), "iss": "issuer"});
        assert_eq!(auth.authenticate(&bearer(jwt(no_exp, SECRET))), Err(InvalidCredential));
        let no_scope = serde_json::json!({"exp": in_an_hour(), "iat": now(), "iss": "issuer"});
        assert_eq!(auth.authenticate(&bearer(jwt(no_scope, SECRET))).unwrap().unwrap().role, None);
    }

    #[test]
    fn jwts_honour_nbf_a_maximum_lifetime_and_refuse_unknown_critical_headers() {
        let auth = authenticator();
        let bearer = |token: String| headers("authorization", &format!("Bearer {token}"));
        let claims = |extra: serde_json::Value| {
            let mut claims =
                serde_json::json!({"scope": "portfolio:admin", "exp": in_an_hour(), "iat": now(), "iss": "issuer"});
            claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            claims
        };
        assert!(auth.authenticate(&bearer(jwt(claims(serde_json::json!({})), SECRET))).is_ok());
        let not_yet = claims(serde_json::json!({"nbf": now() + 600}));
        assert_eq!(auth.authenticate(&bearer(jwt(not_yet, SECRET))), Err(InvalidCredential), "nbf in the future");
        let forever = claims(serde_json::json!({"exp": now() + 365 * 24 * 3600}));
        assert_eq!(auth.authenticate(&bearer(jwt(forever, SECRET))), Err(InvalidCredential), "lifetime over 2 h");
        let no_iat = serde_json::json!({"scope": "portfolio:admin", "exp": in_an_hour(), "iss": "issuer"});
        assert_eq!(auth.authenticate(&bearer(jwt(no_iat, SECRET))), Err(InvalidCredential), "iat required");
        let future_iat = claims(serde_json::json!({"iat": now() + 600}));
        assert_eq!(auth.authenticate(&bearer(jwt(future_iat, SECRET))), Err(InvalidCredential), "issued in the future");

        // The same valid claims under a header that marks an extension critical.
        let valid = jwt(claims(serde_json::json!({})), SECRET);
        let crit = critical_header_token(&claims(serde_json::json!({})));
        assert_ne!(crit, valid);
        assert_eq!(auth.authenticate(&bearer(crit)), Err(InvalidCredential), "unknown crit");
    }

    /// A correctly signed token whose header carries `"crit": ["exp-ext"]`.
    fn critical_header_token(claims: &serde_json::Value) -> String {
        use base64::Engine;
        let encode =
            |json: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string());
        let signing_input = format!(
            "{}.{}",
            encode(&serde_json::json!({"alg": "HS256", "typ": "JWT", "crit": ["exp-ext"], "exp-ext": 1})),
            encode(claims)
        );
        let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
        let signature =
            jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, jsonwebtoken::Algorithm::HS256).unwrap();
        format!("{signing_input}.{signature}")
    }

    #[test]
    fn unsigned_tokens_are_refused() {
        let auth = authenticator();
        // {"alg":"none"} with a valid-looking payload and no signature.
        let token = "eyJhbGciOiJub25lIn0.eyJzY29wZSI6InBvcnRmb2xpbzphZG1pbiIsImV4cCI6OTk5OTk5OTk5OX0.";
        assert_eq!(auth.authenticate(&headers("authorization", &format!("Bearer {token}"))), Err(InvalidCredential));
    }
}
