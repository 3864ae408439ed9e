//! The resource every span, metric and log record carries: the service's name, namespace and
//! version, the deployment profile, the pod it runs in (from the Downward API variables the
//! original read: `MY_POD_NAME`, `MY_POD_IP`, `MY_NODE_NAME`, `MY_NAMESPACE`), and
//! `OTEL_RESOURCE_ATTRIBUTES`.
//!
//! Later sources win: detected attributes, then `OTEL_RESOURCE_ATTRIBUTES` (through
//! `observability.resource_attributes`), then `service.namespace` and `service.name` from
//! their own variables or keys, except that a `service.name` (or `service.namespace`) given in
//! `OTEL_RESOURCE_ATTRIBUTES` beats the key's default when its own variable is unset, as the
//! specification says.

use super::vars::Vars;
use pfs_platform::Config;

const POD: &[(&str, &str)] = &[
    ("MY_POD_NAME", "k8s.pod.name"),
    ("MY_POD_IP", "k8s.pod.ip"),
    ("MY_NODE_NAME", "k8s.node.name"),
    ("MY_NAMESPACE", "k8s.namespace.name"),
];

pub(crate) fn attributes(config: &Config, vars: &Vars<'_>, warnings: &mut Vec<String>) -> Vec<(String, String)> {
    let observability = &config.observability;
    let mut attributes: Vec<(String, String)> = vec![
        ("service.version".into(), env!("CARGO_PKG_VERSION").into()),
        ("deployment.environment.name".into(), config.environment.as_str().into()),
    ];
    for (var, key) in POD {
        if let Some(value) = vars.get(var) {
            attributes.push(((*key).into(), value.into()));
        }
    }
    // In a pod without the Downward API, the hostname is the pod's name.
    if vars.get("MY_POD_NAME").is_none()
        && vars.get("KUBERNETES_SERVICE_HOST").is_some()
        && let Some(host) = vars.get("HOSTNAME")
    {
        attributes.push(("k8s.pod.name".into(), host.into()));
    }
    for pair in observability.resource_attributes.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let decoded = pair.split_once('=').and_then(|(key, value)| {
            let value = percent_encoding::percent_decode_str(value.trim()).decode_utf8().ok()?;
            let key = key.trim();
            (!key.is_empty()).then(|| (key.to_owned(), value.into_owned()))
        });
        match decoded {
            Some(attribute) => attributes.push(attribute),
            None => warnings.push(format!("OTEL_RESOURCE_ATTRIBUTES: {pair:?} ignored (expected key=value)")),
        }
    }
    let given = |key: &str| attributes.iter().any(|(k, _)| k == key);
    let (namespace_given, name_given) = (given("service.namespace"), given("service.name"));
    let namespace = observability.service_namespace.trim();
    if !namespace.is_empty() && (vars.get("OTEL_SERVICE_NAMESPACE").is_some() || !namespace_given) {
        attributes.push(("service.namespace".into(), namespace.into()));
    }
    if vars.get("OTEL_SERVICE_NAME").is_some() || !name_given {
        attributes.push(("service.name".into(), observability.service_name.clone()));
    }
    // Keep the last value of each key, in first-seen order.
    let mut unique: Vec<(String, String)> = Vec::with_capacity(attributes.len());
    for (key, value) in attributes {
        match unique.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => unique.push((key, value)),
        }
    }
    unique
}
