use super::*;
use crate::propagation::Kind;
use pfs_platform::ConfigSources;

fn config(env: &[(&str, &str)]) -> Config {
    let sources = ConfigSources {
        env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..ConfigSources::default()
    };
    Config::load(&sources).expect("valid configuration")
}

fn resolve(env: &[(&str, &str)]) -> Plan {
    plan(&config(env))
}

fn otlp(plan: &SignalPlan) -> &OtlpTarget {
    match plan.exporters.iter().find(|e| e.kind() == "otlp") {
        Some(Exporter::Otlp(target)) => target,
        _ => panic!("{:?} has no OTLP exporter: {:?}", plan.signal, plan.disabled),
    }
}

/// The Helm chart's telemetry variables, `NODE_IP` resolved.
const CHART: &[(&str, &str)] = &[
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "10.0.0.5:4317"),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://10.0.0.5:4318/v1/traces"),
    ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://10.0.0.5:4318/v1/metrics"),
    ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
    ("OTEL_SERVICE_NAME", "globeco-portfolio-service"),
    ("OTEL_SERVICE_NAMESPACE", "globeco"),
    ("OTEL_METRICS_EXPORT_INTERVAL_SECONDS", "5"),
    ("OTEL_METRICS_EXPORT_TIMEOUT_SECONDS", "10"),
    ("MY_POD_NAME", "portfolio-7d9f"),
];

#[test]
fn the_charts_environment_sends_traces_and_metrics_to_its_http_urls_and_logs_over_grpc() {
    let plan = resolve(CHART);
    let traces = otlp(&plan.traces);
    assert_eq!((traces.url.as_str(), traces.protocol), ("http://10.0.0.5:4318/v1/traces", Protocol::HttpProtobuf));
    assert_eq!(traces.source, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    let metrics = otlp(&plan.metrics);
    assert_eq!((metrics.url.as_str(), metrics.protocol), ("http://10.0.0.5:4318/v1/metrics", Protocol::HttpProtobuf));
    let logs = otlp(&plan.logs);
    assert_eq!((logs.url.as_str(), logs.protocol), ("http://10.0.0.5:4317", Protocol::Grpc));
    assert_eq!(logs.source, "OTEL_EXPORTER_OTLP_ENDPOINT");
    assert_eq!((plan.metric_interval, plan.metric_timeout), (Duration::from_secs(5), Duration::from_secs(10)));
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn the_protocol_rule() {
    let cases = [
        ("10.0.0.5:4317", Protocol::Grpc),
        ("collector:9000", Protocol::Grpc),
        ("http://10.0.0.5:4317", Protocol::Grpc),
        ("https://collector:4317/", Protocol::Grpc),
        ("http://10.0.0.5:4318", Protocol::HttpProtobuf),
        ("10.0.0.5:4318", Protocol::HttpProtobuf),
        ("http://collector:9000/v1/traces", Protocol::HttpProtobuf),
        ("https://otlp.example.com/otlp/v1/metrics/", Protocol::HttpProtobuf),
        ("http://collector:9000/v1/logs", Protocol::HttpProtobuf),
        ("https://otlp.example.com", Protocol::HttpProtobuf),
        ("http://collector:9000", Protocol::HttpProtobuf),
    ];
    for (endpoint, expected) in cases {
        assert_eq!(protocol_for(None, endpoint), expected, "{endpoint}");
    }
    assert_eq!(protocol_for(Some(Protocol::Grpc), "http://collector:4318/v1/traces"), Protocol::Grpc);
    assert_eq!(protocol_for(Some(Protocol::HttpProtobuf), "collector:4317"), Protocol::HttpProtobuf);
}

#[test]
fn an_explicit_protocol_beats_the_endpoint_and_the_signals_beats_the_general_one() {
    let plan = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "grpc"),
    ]);
    assert_eq!(otlp(&plan.traces).protocol, Protocol::HttpProtobuf);
    assert_eq!(otlp(&plan.traces).url, "http://collector:4317/v1/traces");
    assert_eq!(otlp(&plan.logs).protocol, Protocol::Grpc);
    assert_eq!(otlp(&plan.logs).url, "http://collector:4317");
    let plan = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
        ("PORTFOLIO_OBSERVABILITY__OTLP__PROTOCOL", "http/protobuf"),
    ]);
    assert_eq!(otlp(&plan.metrics).protocol, Protocol::HttpProtobuf, "the key beats the endpoint's port");
    let plan = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
    ]);
    assert_eq!(otlp(&plan.traces).protocol, Protocol::HttpProtobuf);
    assert!(plan.warnings.iter().any(|w| w.starts_with("OTEL_EXPORTER_OTLP_PROTOCOL")), "{:?}", plan.warnings);
}

#[test]
fn a_signal_endpoint_beats_the_general_one_which_beats_the_key() {
    let plan = resolve(&[
        ("PORTFOLIO_OBSERVABILITY__OTLP__ENDPOINT", "http://from-key:4318"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://general:4318/"),
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://metrics:9999/custom"),
        ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "https://logs.example.com/otlp/v1/logs"),
    ]);
    assert_eq!(otlp(&plan.traces).url, "http://general:4318/v1/traces");
    assert_eq!(otlp(&plan.logs).url, "https://logs.example.com/otlp/v1/logs");
    assert_eq!(otlp(&plan.logs).source, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT");
    assert_eq!(otlp(&plan.metrics).url, "http://metrics:9999/custom", "a signal's URL is used as it is");
    let plan = resolve(&[("PORTFOLIO_OBSERVABILITY__OTLP__ENDPOINT", "http://from-key:4318")]);
    assert_eq!(otlp(&plan.logs).url, "http://from-key:4318/v1/logs");
    assert_eq!(otlp(&plan.logs).source, "observability.otlp.endpoint");
}

#[test]
fn no_endpoint_means_no_export_unless_an_exporter_is_named() {
    let plan = resolve(&[]);
    for signal in plan.signals() {
        assert!(signal.exporters.is_empty());
        assert!(signal.disabled.as_deref().unwrap().contains("OTEL_EXPORTER_OTLP_ENDPOINT"));
    }
    let plan = resolve(&[("OTEL_TRACES_EXPORTER", "otlp")]);
    assert_eq!(otlp(&plan.traces).url, "http://localhost:4318/v1/traces", "the specification's default");
}

#[test]
fn a_schemeless_endpoint_uses_tls_unless_insecure_and_the_signals_flag_wins() {
    let plan = resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "10.0.0.5:4317")]);
    assert_eq!(otlp(&plan.traces).url, "https://10.0.0.5:4317");
    assert!(otlp(&plan.traces).hint.as_deref().unwrap().contains("OTEL_EXPORTER_OTLP_INSECURE=true"));
    let plan = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "10.0.0.5:4317"),
        ("OTEL_EXPORTER_OTLP_INSECURE", "TRUE"),
        ("OTEL_EXPORTER_OTLP_METRICS_INSECURE", "false"),
    ]);
    assert_eq!(otlp(&plan.traces).url, "http://10.0.0.5:4317");
    assert_eq!(otlp(&plan.metrics).url, "https://10.0.0.5:4317");
    let plan = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "10.0.0.5:4317"),
        ("PORTFOLIO_OBSERVABILITY__OTLP__INSECURE", "true"),
    ]);
    assert_eq!(otlp(&plan.logs).url, "http://10.0.0.5:4317");
    let plan =
        resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://secure:4317"), ("OTEL_EXPORTER_OTLP_INSECURE", "true")]);
    assert_eq!(otlp(&plan.logs).url, "https://secure:4317", "a scheme is kept");
}

#[test]
fn a_malformed_endpoint_disables_its_signals_with_one_warning_naming_the_variable() {
    let plan = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://[::1"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/v1/traces"),
    ]);
    assert_eq!(otlp(&plan.traces).url, "http://127.0.0.1:4318/v1/traces");
    for signal in [&plan.metrics, &plan.logs] {
        assert!(signal.exporters.is_empty());
        assert!(signal.disabled.as_deref().unwrap().starts_with("OTEL_EXPORTER_OTLP_ENDPOINT="), "{signal:?}");
    }
    let plan = resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector:21")]);
    assert!(plan.traces.disabled.as_deref().unwrap().contains("scheme"), "{:?}", plan.traces);
}

#[test]
fn headers_timeout_and_compression_follow_the_precedence() {
    let plan = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20abc, x-tenant = t1 ,broken"),
        ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "x-logs=1"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "700"),
        ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "900"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none"),
        ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "zstd"),
        ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "brotli"),
    ]);
    let traces = otlp(&plan.traces);
    assert_eq!(
        traces.headers,
        [("authorization".to_owned(), "Bearer abc".to_owned()), ("x-tenant".to_owned(), "t1".to_owned())]
    );
    assert_eq!(otlp(&plan.logs).headers, [("x-logs".to_owned(), "1".to_owned())]);
    assert_eq!(traces.timeout, Duration::from_millis(2500));
    assert_eq!(otlp(&plan.metrics).timeout, Duration::from_millis(700));
    assert_eq!(otlp(&plan.logs).timeout, Duration::from_millis(900));
    assert_eq!(traces.compression, None);
    assert_eq!(otlp(&plan.metrics).compression, Some(Compression::Gzip), "an unknown value falls through");
    assert_eq!(otlp(&plan.logs).compression, Some(Compression::Gzip), "zstd is not the specification's");
    assert!(plan.warnings.iter().any(|w| w.starts_with("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION")));
    let warning = plan.warnings.iter().find(|w| w.contains("\"broken\"")).expect("a warning for the broken pair");
    assert!(warning.starts_with("OTEL_EXPORTER_OTLP_HEADERS"), "{warning}");
    assert!(!plan.warnings.iter().any(|w| w.contains("abc")), "header values are never repeated");

    let plan = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        ("PORTFOLIO_OBSERVABILITY__OTLP__HEADERS", "x-key=from-config"),
        ("PORTFOLIO_OBSERVABILITY__OTLP__TIMEOUT", "3s"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
    ]);
    assert_eq!(otlp(&plan.traces).headers, [("x-key".to_owned(), "from-config".to_owned())]);
    assert_eq!(otlp(&plan.traces).timeout, Duration::from_secs(3), "an unusable value falls through");
    assert!(plan.warnings.iter().any(|w| w.starts_with("OTEL_EXPORTER_OTLP_TIMEOUT")));
}

#[test]
fn a_missing_certificate_disables_the_exporter_with_a_warning_naming_the_variable() {
    let plan = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317"),
        ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "/nonexistent/ca.pem"),
    ]);
    let reason = plan.traces.disabled.as_deref().expect("traces off");
    assert!(reason.starts_with("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE=/nonexistent/ca.pem"), "{reason}");
    assert!(plan.warnings.iter().any(|w| w == reason));
    assert!(plan.metrics.disabled.is_none(), "the other signals keep their exporters");

    let ca = std::env::current_exe().unwrap();
    let ca = ca.to_str().unwrap();
    let plan = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317"),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca),
        ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", ca),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", ca),
    ]);
    let traces = otlp(&plan.traces);
    assert_eq!(traces.certificate.as_ref().unwrap().source, "OTEL_EXPORTER_OTLP_CERTIFICATE");
    assert_eq!(traces.client_key.as_ref().unwrap().source, "OTEL_EXPORTER_OTLP_CLIENT_KEY");
    let plan = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317"),
        ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", ca),
    ]);
    assert!(plan.logs.disabled.as_deref().unwrap().contains("OTEL_EXPORTER_OTLP_CLIENT_KEY"));
}

#[test]
fn exporters_are_chosen_per_signal_and_the_sdk_can_be_disabled() {
    let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317");
    let plan = resolve(&[
        endpoint,
        ("OTEL_TRACES_EXPORTER", "console,otlp"),
        ("OTEL_METRICS_EXPORTER", "none"),
        ("OTEL_LOGS_EXPORTER", "zipkin"),
    ]);
    let kinds: Vec<&str> = plan.traces.exporters.iter().map(Exporter::kind).collect();
    assert_eq!(kinds, ["otlp", "console"]);
    assert_eq!(plan.metrics.disabled.as_deref(), Some("OTEL_METRICS_EXPORTER=none"));
    assert!(plan.logs.exporters.is_empty());
    assert!(plan.warnings.iter().any(|w| w.starts_with("OTEL_LOGS_EXPORTER") && w.contains("zipkin")));

    let plan = resolve(&[endpoint, ("OTEL_SDK_DISABLED", "true")]);
    for signal in plan.signals() {
        assert_eq!(signal.disabled.as_deref(), Some("OTEL_SDK_DISABLED=true"));
    }
    let plan = resolve(&[endpoint, ("ENABLE_METRICS", "false"), ("PORTFOLIO_OBSERVABILITY__OTLP__LOGS", "false")]);
    assert!(plan.metrics.disabled.as_deref().unwrap().contains("ENABLE_METRICS"));
    assert_eq!(plan.logs.disabled.as_deref(), Some("observability.otlp.logs is false"));
    assert!(plan.traces.disabled.is_none());
}

#[test]
fn batching_and_the_metric_interval_take_the_standard_variables_first() {
    let plan = resolve(&[
        ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "500"),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "900"),
        ("OTEL_BLRP_MAX_QUEUE_SIZE", "64"),
        ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "16"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "zero"),
        ("OTEL_BLRP_EXPORT_TIMEOUT", "1200"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "1500"),
        ("OTEL_METRICS_EXPORT_INTERVAL_SECONDS", "30"),
        ("OTEL_METRICS_EXPORT_TIMEOUT_SECONDS", "2.5"),
    ]);
    let spans = Batching {
        max_queue: 100,
        max_batch: 100,
        delay: Duration::from_millis(50),
        timeout: Duration::from_millis(900),
    };
    assert_eq!(plan.spans, spans, "a batch is never larger than the queue");
    let log_records = Batching {
        max_queue: 64,
        max_batch: 16,
        delay: Duration::from_millis(500),
        timeout: Duration::from_millis(1200),
    };
    assert_eq!(plan.log_records, log_records, "an unusable delay falls back to the key");
    assert!(plan.warnings.iter().any(|w| w.starts_with("OTEL_BLRP_SCHEDULE_DELAY")));
    assert_eq!(plan.metric_interval, Duration::from_millis(1500), "the standard variable wins");
    assert_eq!(plan.metric_timeout, Duration::from_millis(2500), "the original's seconds");
}

#[test]
fn propagators_default_to_w3c_and_accept_b3() {
    assert_eq!(resolve(&[]).propagators, [Kind::TraceContext, Kind::Baggage]);
    let plan = resolve(&[("OTEL_PROPAGATORS", "b3multi, tracecontext,b3,jaeger")]);
    assert_eq!(plan.propagators, [Kind::B3Multi, Kind::TraceContext, Kind::B3]);
    assert!(plan.warnings.iter().any(|w| w.starts_with("OTEL_PROPAGATORS") && w.contains("jaeger")));
    assert!(resolve(&[("OTEL_PROPAGATORS", "none")]).propagators.is_empty());
}

fn attribute<'a>(plan: &'a Plan, key: &str) -> Option<&'a str> {
    plan.resource.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn the_resource_names_the_service_its_namespace_and_its_pod() {
    let plan = resolve(&[
        ("OTEL_SERVICE_NAMESPACE", "globeco"),
        ("MY_POD_NAME", "portfolio-7d9f"),
        ("MY_POD_IP", "10.1.2.3"),
        ("MY_NODE_NAME", "node-a"),
        ("MY_NAMESPACE", "bench"),
        ("OTEL_RESOURCE_ATTRIBUTES", "team=core,note=a%2Cb"),
    ]);
    assert_eq!(attribute(&plan, "service.name"), Some("globeco-portfolio-service"));
    assert_eq!(attribute(&plan, "service.namespace"), Some("globeco"));
    assert_eq!(attribute(&plan, "k8s.pod.name"), Some("portfolio-7d9f"));
    assert_eq!(attribute(&plan, "k8s.pod.ip"), Some("10.1.2.3"));
    assert_eq!(attribute(&plan, "k8s.node.name"), Some("node-a"));
    assert_eq!(attribute(&plan, "k8s.namespace.name"), Some("bench"));
    assert_eq!(attribute(&plan, "note"), Some("a,b"));

    // Without OTEL_SERVICE_NAME, service.name from OTEL_RESOURCE_ATTRIBUTES beats the default.
    let plan = resolve(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes,service.namespace=ns")]);
    assert_eq!(attribute(&plan, "service.name"), Some("from-attributes"));
    assert_eq!(attribute(&plan, "service.namespace"), Some("ns"));
    let plan = resolve(&[
        ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes"),
        ("OTEL_SERVICE_NAME", "from-variable"),
    ]);
    assert_eq!(attribute(&plan, "service.name"), Some("from-variable"));
    let plan = resolve(&[("KUBERNETES_SERVICE_HOST", "10.96.0.1"), ("HOSTNAME", "portfolio-abc")]);
    assert_eq!(attribute(&plan, "k8s.pod.name"), Some("portfolio-abc"));
    assert_eq!(attribute(&resolve(&[("HOSTNAME", "laptop")]), "k8s.pod.name"), None);
}
