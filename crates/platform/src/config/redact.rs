//! Keeping secrets out of printed configuration and logs.

/// The URL with any password replaced by `***`; unparseable input is hidden whole.
pub fn redact_url(raw: &str) -> String {
    if raw.is_empty() || !raw.contains('@') {
        return raw.to_owned();
    }
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => "***".to_owned(),
    }
}
