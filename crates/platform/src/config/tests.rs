use super::*;

fn load(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let sources = ConfigSources {
        env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..ConfigSources::default()
    };
    Config::load(&sources)
}

#[test]
fn defaults_serve_sqlite_on_port_8000_in_development() {
    let config = load(&[]).expect("defaults are valid");
    assert_eq!(config.environment, Profile::Development);
    assert_eq!((config.server.host.as_str(), config.server.port), ("0.0.0.0", 8000));
    assert_eq!(config.database.effective_url(), "sqlite://./data/portfolio.db");
    assert_eq!(config.logging.format, LogFormat::Pretty);
}

#[test]
fn the_profile_overlay_applies_and_env_beats_it() {
    let config = load(&[("PORTFOLIO_ENV", "Production")]).unwrap();
    assert_eq!(config.environment, Profile::Production);
    assert_eq!((config.logging.level.as_str(), config.logging.format), ("warn", LogFormat::Json));

    let config = load(&[("PORTFOLIO_ENV", "production"), ("PORTFOLIO_LOG_LEVEL", "debug")]).unwrap();
    assert_eq!(config.logging.level, "debug");
}

#[test]
fn the_originals_profile_variables_are_read_and_invalid_ones_ignored() {
    assert_eq!(load(&[("PORTFOLIO_SERVICE_ENV", "staging")]).unwrap().environment, Profile::Staging);
    assert_eq!(load(&[("ENVIRONMENT", "production")]).unwrap().environment, Profile::Production);
    assert_eq!(load(&[("ENVIRONMENT", "prod")]).unwrap().environment, Profile::Development);
    assert_eq!(load(&[("MY_NAMESPACE", "globeco-prod")]).unwrap().environment, Profile::Production);
}

#[test]
fn an_invalid_portfolio_env_is_a_clear_error() {
    let err = load(&[("PORTFOLIO_ENV", "qa")]).unwrap_err().to_string();
    assert!(err.contains("PORTFOLIO_ENV") && err.contains("\"qa\""), "{err}");
}

#[test]
fn short_and_nested_env_names_map_to_keys() {
    let config = load(&[
        ("PORTFOLIO_HOST", "127.0.0.1"),
        ("PORTFOLIO_PORT", "9001"),
        ("PORTFOLIO_DATA_DIR", "/tmp/pfs"),
        ("PORTFOLIO_SERVER__REQUEST_TIMEOUT", "250ms"),
        ("PORTFOLIO_SERVER__CORS_ALLOWED_ORIGINS", "https://a.example, https://b.example"),
    ])
    .unwrap();
    assert_eq!((config.server.host.as_str(), config.server.port), ("127.0.0.1", 9001));
    assert_eq!(config.database.effective_url(), "sqlite:///tmp/pfs/portfolio.db");
    assert_eq!(config.server.request_timeout, Duration::from_millis(250));
    assert_eq!(config.server.cors_allowed_origins, ["https://a.example", "https://b.example"]);
}

#[test]
fn kubernetes_service_links_are_not_mistaken_for_configuration() {
    let config =
        load(&[("PORTFOLIO_SERVICE_PORT", "tcp://10.0.0.1:8000"), ("PORTFOLIO_SERVICE_SERVICE_HOST", "10.0.0.1")]);
    assert!(config.is_ok());
}

#[test]
fn the_originals_log_level_names_are_understood_but_ours_win() {
    assert_eq!(load(&[("LOG_LEVEL", "WARNING")]).unwrap().logging.level, "warn");
    assert_eq!(load(&[("LOG_LEVEL", "WARNING"), ("PORTFOLIO_LOG_LEVEL", "error")]).unwrap().logging.level, "error");
}

#[test]
fn the_originals_pool_sizes_size_the_pool_but_ours_win() {
    let chart = load(&[("MAX_POOL_SIZE", "50"), ("MIN_POOL_SIZE", "10")]).unwrap();
    assert_eq!((chart.database.max_connections, chart.database.min_connections), (50, 10));
    let ours = load(&[
        ("MAX_POOL_SIZE", "50"),
        ("MIN_POOL_SIZE", "10"),
        ("PORTFOLIO_DATABASE__MAX_CONNECTIONS", "20"),
        ("PORTFOLIO_DATABASE__MIN_CONNECTIONS", "4"),
    ])
    .unwrap();
    assert_eq!((ours.database.max_connections, ours.database.min_connections), (20, 4));
    let err = load(&[("MAX_POOL_SIZE", "fifty")]).unwrap_err().to_string();
    assert!(err.contains("max_connections"), "{err}");
}

/// The suite's Helm chart environment (kasbench/globeco-helm), non-OpenTelemetry part: loads,
/// sizes the pool, picks MongoDB and the level; the variables without a meaning here are
/// accepted silently.
#[test]
fn the_charts_environment_loads() {
    let config = load(&[
        ("NODE_IP", "10.0.0.5"),
        ("MONGODB_URI", "mongodb://globeco-portfolio-service-mongodb:27017"),
        ("OTEL_METRICS_LOGGING_ENABLED", "true"),
        ("METRICS_DEBUG_LOGGING", "false"),
        ("ENABLE_THREAD_METRICS", "true"),
        ("THREAD_METRICS_UPDATE_INTERVAL", "1.0"),
        ("THREAD_METRICS_DEBUG_LOGGING", "false"),
        ("SERVICE_NAMESPACE", "globeco"),
        ("MY_POD_NAME", "globeco-portfolio-service-7d9f-abcde"),
        ("MY_POD_IP", "10.1.2.3"),
        ("MY_NODE_NAME", "node-1"),
        ("LOG_LEVEL", "INFO"),
        ("MAX_POOL_SIZE", "50"),
        ("MIN_POOL_SIZE", "10"),
    ])
    .unwrap();
    assert_eq!(config.database.effective_url(), "mongodb://globeco-portfolio-service-mongodb:27017");
    assert_eq!((config.database.max_connections, config.database.min_connections), (50, 10));
    assert_eq!(config.logging.level, "info");
    assert_eq!(config.environment, Profile::Development);
}

#[test]
fn typos_in_nested_keys_and_bad_values_are_reported() {
    let err = load(&[("PORTFOLIO_SERVER__PROT", "1")]).unwrap_err().to_string();
    assert!(err.contains("prot"), "{err}");
    let err = load(&[("PORTFOLIO_PORT", "eighty")]).unwrap_err().to_string();
    assert!(err.contains("port"), "{err}");
}

#[test]
fn unknown_keys_and_wrong_types_are_all_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[server]\nport = \"abc\"\nbogus = 1\n[nosuch]\nx = 1\n").unwrap();
    let sources = ConfigSources {
        env: [("PORTFOLIO_CACHE__TTL".to_owned(), "soon".to_owned())].into(),
        file: Some(file),
        ..ConfigSources::default()
    };
    let err = Config::load(&sources).unwrap_err().to_string();
    for problem in ["server.port: ", "server.bogus: unknown key", "nosuch.x: unknown key", "cache.ttl: "] {
        assert_eq!(err.matches(problem).count(), 1, "{problem:?} once in: {err}");
    }
    assert_eq!(err.matches("abc").count(), 1, "{err}");
}

#[test]
fn every_validation_problem_is_listed_at_once() {
    let err = load(&[
        ("PORTFOLIO_DATABASE_URL", "mysql://u:pw@h/db"),
        ("PORTFOLIO_LOG_LEVEL", "info,sqlx=loud"),
        ("PORTFOLIO_SERVER__CORS_ALLOWED_ORIGINS", "*,https://a.example"),
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("database.url") && err.contains("logging.level") && err.contains("cors"), "{err}");
    assert!(!err.contains("pw"), "secrets never appear in errors: {err}");
}

#[test]
fn command_line_overrides_beat_the_environment() {
    let sources =
        ConfigSources { env: [("PORTFOLIO_PORT".to_owned(), "9001".to_owned())].into(), ..Default::default() }
            .with_override("server.port", "9002");
    assert_eq!(Config::load(&sources).unwrap().server.port, 9002);
}

#[test]
fn printed_configuration_hides_database_passwords() {
    let config = load(&[("PORTFOLIO_DATABASE_URL", "sqlite://./x.db")]).unwrap();
    let mut with_secret = config.clone();
    with_secret.database.url = "postgres://app:hunter2@db:5432/portfolio".into();
    let printed = with_secret.to_redacted_toml();
    assert!(printed.contains("postgres://app:***@db:5432/portfolio"), "{printed}");
    assert!(!printed.contains("hunter2"));
    for url in ["postgres://db/portfolio?user=app&password=hunter2", "postgres://db/x?sslpassword=hunter2"] {
        let config = load(&[("PORTFOLIO_DATABASE_URL", url), ("PORTFOLIO_REDIS_URL", "redis://:hunter2@r:6379")]);
        let printed = config.unwrap().to_redacted_toml();
        assert!(!printed.contains("hunter2") && printed.contains("password=***"), "{printed}");
    }
}

#[test]
fn the_embedded_defaults_document_every_key() {
    let config = load(&[]).unwrap();
    let rendered: toml::Table = toml::from_str(&config.to_redacted_toml()).unwrap();
    let defaults: toml::Table = toml::from_str(DEFAULT_TOML).unwrap();
    for (section, keys) in rendered.iter().filter_map(|(k, v)| Some((k, v.as_table()?))) {
        for key in keys.keys() {
            assert!(
                defaults[section].as_table().unwrap().contains_key(key),
                "{section}.{key} missing from default.toml"
            );
        }
    }
}

#[test]
fn a_read_replica_cannot_be_combined_with_the_cache() {
    let replica =
        [("PORTFOLIO_DATABASE_URL", "postgres://a@h/db"), ("PORTFOLIO_DATABASE__READ_URL", "postgres://a@r/db")];
    let err = load(&replica).unwrap_err().to_string();
    assert!(err.contains("database.read_url") && err.contains("cache.enabled"), "{err}");
    let without_cache: Vec<_> = replica.into_iter().chain([("PORTFOLIO_CACHE__ENABLED", "false")]).collect();
    assert!(load(&without_cache).is_ok());
}

#[test]
fn rate_limits_beyond_a_million_per_second_are_refused() {
    let err = load(&[("PORTFOLIO_RATE_LIMIT__PER_SECOND", "2000000")]).unwrap_err().to_string();
    assert!(err.contains("rate_limit.per_second"), "{err}");
}

#[test]
fn production_warns_about_wildcard_cors_and_missing_auth() {
    assert!(load(&[]).unwrap().warnings().is_empty(), "development accepts the original's defaults quietly");
    let warnings = load(&[("PORTFOLIO_ENV", "production")]).unwrap().warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("cors_allowed_origins") && warnings[1].contains("auth.enabled"));
    let digest = "04c0218b3c6929c6638fa052827cc353c3e1eb3a432020f686e083aae900d6c4";
    let keys = format!("admin:ops:{digest}");
    let locked_down = load(&[
        ("PORTFOLIO_ENV", "production"),
        ("PORTFOLIO_SERVER__CORS_ALLOWED_ORIGINS", "https://app.example"),
        ("PORTFOLIO_AUTH__ENABLED", "true"),
        ("PORTFOLIO_AUTH__API_KEYS", &keys),
    ])
    .unwrap();
    assert!(locked_down.warnings().is_empty());
    assert_eq!(locked_down.auth.parsed_api_keys().len(), 1);
}

#[test]
fn the_jwt_secret_is_redacted_in_print() {
    let secret = "a-very-long-secret-for-hs256-signing";
    let shown = load(&[("PORTFOLIO_AUTH__JWT_HS256_SECRET", secret)]).unwrap().to_redacted_toml();
    assert!(!shown.contains(secret) && shown.contains("[REDACTED]"));
}

#[test]
fn the_mongodb_url_path_names_the_database_and_config_print_shows_it() {
    let config = load(&[("PORTFOLIO_DATABASE_URL", "mongodb://127.0.0.1:27017/portfolio_rust")]).unwrap();
    assert_eq!(config.database.mongo_database, "portfolio_rust");
    assert!(config.to_redacted_toml().contains("mongo_database = \"portfolio_rust\""), "{}", config.to_redacted_toml());
}

#[test]
fn mongodb_db_names_the_database_when_the_url_has_none() {
    let env = [("MONGODB_URI", "mongodb://127.0.0.1:27017/?w=1"), ("MONGODB_DB", "globeco")];
    assert_eq!(load(&env).unwrap().database.mongo_database, "globeco");
    let config = load(&[("MONGODB_URI", "mongodb://127.0.0.1:27017")]).unwrap();
    assert_eq!(config.database.mongo_database, "portfolio", "the original's default");
    assert!(config.to_redacted_toml().contains("mongo_database = \"portfolio\""));
    let same = [("MONGODB_URI", "mongodb://h/globeco"), ("MONGODB_DB", "globeco")];
    assert_eq!(load(&same).unwrap().database.mongo_database, "globeco", "naming one database twice is fine");
}

#[test]
fn a_url_and_mongodb_db_naming_different_databases_is_refused_naming_both() {
    let env = [("PORTFOLIO_DATABASE_URL", "mongodb://127.0.0.1:27017/portfolio_rust"), ("MONGODB_DB", "portfolio")];
    let err = load(&env).unwrap_err().to_string();
    assert!(err.contains("\"portfolio_rust\"") && err.contains("\"portfolio\"") && err.contains("MONGODB_DB"), "{err}");
}

#[test]
fn an_impossible_mongodb_database_name_is_refused() {
    let err = load(&[("MONGODB_URI", "mongodb://h:27017"), ("MONGODB_DB", "a.b")]).unwrap_err().to_string();
    assert!(err.contains("\"a.b\" is not a MongoDB database name"), "{err}");
    assert!(load(&[("MONGODB_DB", "a.b")]).is_ok(), "only checked when MongoDB is the backend");
}

#[test]
fn the_originals_telemetry_variables_map_to_keys_and_ours_win() {
    let config = load(&[
        ("ENABLE_METRICS", "false"),
        ("ENABLE_METRICS_MIDDLEWARE", "false"),
        ("ENABLE_DATABASE_TRACING", "yes"),
        ("OTEL_METRICS_EXPORT_INTERVAL_SECONDS", "5"),
        ("OTEL_METRICS_EXPORT_TIMEOUT_SECONDS", "2.5"),
    ])
    .unwrap();
    let observability = &config.observability;
    assert!(!observability.metrics_enabled);
    assert!(!observability.flags.metrics_middleware);
    assert!(observability.flags.database_tracing);
    assert_eq!(observability.otlp.metrics_interval, Duration::from_secs(5));
    assert_eq!(observability.otlp.metrics_timeout, Duration::from_millis(2500));

    let config = load(&[
        ("ENABLE_DATABASE_TRACING", "false"),
        ("PORTFOLIO_OBSERVABILITY__FLAGS__DATABASE_TRACING", "true"),
        ("OTEL_METRICS_EXPORT_INTERVAL_SECONDS", "5"),
        ("PORTFOLIO_OBSERVABILITY__OTLP__METRICS_INTERVAL", "7s"),
    ])
    .unwrap();
    assert!(config.observability.flags.database_tracing);
    assert_eq!(config.observability.otlp.metrics_interval, Duration::from_secs(7));
}

#[test]
fn the_standard_service_variables_beat_our_keys() {
    let config = load(&[
        ("PORTFOLIO_OBSERVABILITY__SERVICE_NAME", "ours"),
        ("OTEL_SERVICE_NAME", "standard"),
        ("OTEL_SERVICE_NAMESPACE", "globeco"),
    ])
    .unwrap();
    assert_eq!(config.observability.service_name, "standard");
    assert_eq!(config.observability.service_namespace, "globeco");
}

#[test]
fn the_charts_other_variables_are_accepted_and_the_telemetry_ones_kept_for_the_pipeline() {
    let config = load(&[
        ("OTEL_METRICS_LOGGING_ENABLED", "true"),
        ("METRICS_DEBUG_LOGGING", "false"),
        ("ENABLE_THREAD_METRICS", "true"),
        ("THREAD_METRICS_UPDATE_INTERVAL", "1.0"),
        ("THREAD_METRICS_DEBUG_LOGGING", "false"),
        ("NODE_IP", "10.0.0.5"),
        ("SERVICE_NAMESPACE", "original"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "10.0.0.5:4317"),
        ("OTEL_EXPORTER_OTLP_HEADERS", ""),
        ("MY_POD_NAME", "portfolio-1"),
        ("PATH", "/usr/bin"),
    ])
    .expect("accepted");
    let kept: Vec<&str> = config.telemetry_env.keys().map(String::as_str).collect();
    assert_eq!(kept, ["MY_POD_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_METRICS_LOGGING_ENABLED"]);
    assert_eq!(config.observability.otlp.endpoint, "", "the exporter variables are not keys");
    assert_eq!(config.observability.service_namespace, "", "SERVICE_NAMESPACE: no effect, as in the original");
}

#[test]
fn printed_configuration_hides_export_header_values() {
    let config =
        load(&[("PORTFOLIO_OBSERVABILITY__OTLP__HEADERS", "authorization=Bearer s3cret,x-tenant=t1")]).unwrap();
    let printed = config.to_redacted_toml();
    assert!(printed.contains(r#"headers = "authorization=[REDACTED],x-tenant=[REDACTED]""#), "{printed}");
    assert!(!printed.contains("s3cret"));
}
