//! Which MongoDB database holds the portfolios: the one the URL names
//! (`mongodb://host:port/NAME`), else `database.mongo_database` (the original's `MONGODB_DB`),
//! else the original's default. Naming two different ones is refused rather than guessed, so
//! the service never writes its documents and indexes into another application's database.

use super::DatabaseConfig;

/// The original's database when nothing names one.
pub const DEFAULT_MONGO_DATABASE: &str = "portfolio";

/// Characters MongoDB does not allow in a database name (on any platform).
const FORBIDDEN: &[char] = &['/', '\\', '.', ' ', '"', '$', '*', '<', '>', ':', '|', '?', '\0'];

impl DatabaseConfig {
    /// The database the portfolios live in (MongoDB only). Valid only after
    /// [`DatabaseConfig::mongo_database_problems`] found nothing.
    pub fn effective_mongo_database(&self) -> String {
        let url = self.effective_url();
        url_database(&url)
            .filter(|name| !name.is_empty())
            .or_else(|| Some(self.mongo_database.trim().to_owned()).filter(|name| !name.is_empty()))
            .unwrap_or_else(|| DEFAULT_MONGO_DATABASE.to_owned())
    }

    pub(super) fn mongo_database_problems(&self) -> Vec<String> {
        let url = self.effective_url();
        if !url.starts_with("mongodb://") {
            return Vec::new();
        }
        let configured = self.mongo_database.trim();
        let mut problems = Vec::new();
        if let Some(named) = url_database(&url).filter(|name| !name.is_empty())
            && !configured.is_empty()
            && named != configured
        {
            problems.push(format!(
                "database.url names the MongoDB database {named:?} but database.mongo_database (MONGODB_DB) \
                 names {configured:?}: name one of them, or the same in both"
            ));
        }
        let name = self.effective_mongo_database();
        if name.contains(FORBIDDEN) || name.len() > 63 {
            problems.push(format!(
                "database: {name:?} is not a MongoDB database name (at most 63 bytes, none of / \\ . space \" $ * < > : | ?)"
            ));
        }
        problems
    }
}

/// The database in a `mongodb://` URL's path (`mongodb://user:pw@h1,h2/NAME?options`),
/// percent-decoded as the driver decodes it; `None` without a path.
fn url_database(url: &str) -> Option<String> {
    let rest = url.strip_prefix("mongodb://")?;
    let rest = rest.split_once('?').map_or(rest, |(before, _)| before);
    // Neither credentials nor hosts may hold a raw '/' (a socket path is percent-encoded).
    let (_, path) = rest.split_once('/')?;
    Some(percent_encoding::percent_decode_str(path).decode_utf8_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::url_database;

    #[test]
    fn the_path_of_the_url_is_the_database() {
        assert_eq!(url_database("mongodb://h:27017/portfolio_rust").as_deref(), Some("portfolio_rust"));
        assert_eq!(url_database("mongodb://u:p@h1:1,h2:2/db?replicaSet=rs0").as_deref(), Some("db"));
        assert_eq!(url_database("mongodb://h/my%2Ddb").as_deref(), Some("my-db"));
        assert_eq!(url_database("mongodb://h/?w=majority").as_deref(), Some(""));
        assert_eq!(url_database("mongodb://h:27017").as_deref(), None);
        assert_eq!(url_database("mongodb://h?appName=x/y").as_deref(), None, "a '/' in the options is no path");
        assert_eq!(url_database("postgres://h/db"), None);
    }
}
