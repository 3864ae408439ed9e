//! Keeping secrets out of printed configuration and logs.
//!
//! A connection string can carry a secret in three places: the URL's userinfo
//! (`postgres://app:secret@db/x`), a query parameter (`?password=secret`, `sslpassword`,
//! MongoDB's `tlsCertificateKeyFilePassword`), or a libpq `key=value` list
//! (`host=db password=secret`). Each form is redacted by hand rather than through a URL
//! parser: a URL that does not parse (MongoDB's `host1,host2` lists do not) must still not
//! be printed with its password.

const HIDDEN: &str = "***";

/// `raw` with every password, token or secret replaced by `***`; everything else (scheme,
/// user, hosts, database, other options) stays, so the printed value still identifies the
/// server.
pub fn redact_url(raw: &str) -> String {
    match raw.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", redact_authority_and_query(rest)),
        None if raw.contains('=') => redact_key_values(raw),
        None => raw.to_owned(),
    }
}

/// Whether a parameter's value is a secret, by its name: any password, token or secret, and
/// API keys.
fn is_secret(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    ["pass", "pwd", "secret", "token"].iter().any(|word| name.contains(word))
        || matches!(name.as_str(), "key" | "apikey" | "api_key" | "api-key")
}

fn redact_authority_and_query(rest: &str) -> String {
    // The userinfo ends at the last '@' before the query: an unencoded '/' or '@' in a
    // password must not end it early.
    let before_query = rest.find(['?', '#']).unwrap_or(rest.len());
    let hosts_start = rest[..before_query].rfind('@').map_or(0, |at| at + 1);
    let end = rest[hosts_start..].find(['/', '?', '#']).map_or(rest.len(), |i| hosts_start + i);
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:{HIDDEN}@{hosts}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = query.split_once('#').map_or((query, None), |(q, f)| (q, Some(f)));
            let query = query.split('&').map(redact_pair).collect::<Vec<_>>().join("&");
            match fragment {
                Some(fragment) => format!("{path}?{query}#{fragment}"),
                None => format!("{path}?{query}"),
            }
        }
        None => tail.to_owned(),
    };
    format!("{authority}{tail}")
}

fn redact_pair(pair: &str) -> String {
    match pair.split_once('=') {
        Some((name, _)) if is_secret(name) => format!("{name}={HIDDEN}"),
        _ => pair.to_owned(),
    }
}

/// libpq's `key=value key='quoted value'` form. A quoted value may hold spaces and `\'`.
fn redact_key_values(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(eq) = rest.find('=') {
        let (name, after) = rest.split_at(eq);
        let after = &after[1..];
        let value_len = value_length(after);
        out.push_str(name);
        out.push('=');
        let name = name.rsplit(char::is_whitespace).next().unwrap_or(name);
        out.push_str(if is_secret(name) { HIDDEN } else { &after[..value_len] });
        rest = &after[value_len..];
    }
    out.push_str(rest);
    out
}

fn value_length(after: &str) -> usize {
    let Some(quoted) = after.strip_prefix('\'') else {
        return after.find(char::is_whitespace).unwrap_or(after.len());
    };
    let mut escaped = false;
    for (i, c) in quoted.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '\'' if !escaped => return i + 2,
            _ => escaped = false,
        }
    }
    after.len()
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn userinfo_passwords_are_hidden_and_the_server_still_named() {
        assert_eq!(redact_url("postgres://app:hunter2@db:5432/portfolio"), "postgres://app:***@db:5432/portfolio");
        assert_eq!(redact_url("redis://:hunter2@cache:6379/0"), "redis://:***@cache:6379/0");
        assert_eq!(redact_url("postgres://app@db/portfolio"), "postgres://app@db/portfolio");
        // A password may itself contain '@' and ':'.
        assert_eq!(redact_url("postgres://app:p@ss:w0rd@db/x"), "postgres://app:***@db/x");
        assert_eq!(redact_url("postgres://app:pa/ss@db/x"), "postgres://app:***@db/x");
    }

    #[test]
    fn secret_query_parameters_are_hidden() {
        let shown = redact_url("postgres://db/x?user=app&password=hunter2&sslmode=require&sslpassword=keypass");
        assert_eq!(shown, "postgres://db/x?user=app&password=***&sslmode=require&sslpassword=***");
        let shown = redact_url("mongodb://a:1,b:2/portfolio?replicaSet=rs&tlsCertificateKeyFilePassword=k#frag");
        assert_eq!(shown, "mongodb://a:1,b:2/portfolio?replicaSet=rs&tlsCertificateKeyFilePassword=***#frag");
        assert_eq!(redact_url("sqlite://./data/portfolio.db?mode=rwc"), "sqlite://./data/portfolio.db?mode=rwc");
    }

    #[test]
    fn urls_that_do_not_parse_still_lose_their_passwords() {
        let shown = redact_url("mongodb://app:hunter2@h1:27017,h2:27017/portfolio?authSource=admin");
        assert_eq!(shown, "mongodb://app:***@h1:27017,h2:27017/portfolio?authSource=admin");
    }

    #[test]
    fn libpq_key_value_strings_are_redacted() {
        assert_eq!(redact_url("host=db user=app password=hunter2 dbname=x"), "host=db user=app password=*** dbname=x");
        assert_eq!(
            redact_url("host=db password='hunter 2 \\' x' sslpassword=k"),
            "host=db password=*** sslpassword=***"
        );
        assert_eq!(redact_url(""), "");
        assert_eq!(redact_url("./data"), "./data");
    }
}
