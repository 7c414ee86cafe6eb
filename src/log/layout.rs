//! `<root>/<namespace>/<app>/<pod>/<service>`: identity from the environment, validated.

use std::path::PathBuf;

/// Where Kubernetes mounts the pod's namespace for the service account.
const SA_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Who the container is: the three path components above the service name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Kubernetes namespace (or `default`).
    pub namespace: String,
    /// Application name (or `default`).
    pub app: String,
    /// Pod name (or the hostname).
    pub pod: String,
}

impl Identity {
    /// Reads the identity from `TEND_*`, Kubernetes and hostname sources (SPEC §2).
    pub fn from_env() -> Result<Identity, String> {
        Self::resolve(&|k| std::env::var(k).ok(), &|p| {
            std::fs::read_to_string(p).ok()
        })
    }

    /// The resolution order of SPEC §2 over injectable lookups (tests pass fakes).
    fn resolve(
        env: &dyn Fn(&str) -> Option<String>,
        file: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Identity, String> {
        let var = |names: &[&'static str]| {
            names
                .iter()
                .find_map(|n| env(n).filter(|v| !v.is_empty()).map(|v| (n.to_string(), v)))
        };
        let (ns_src, namespace) = var(&["TEND_NAMESPACE", "POD_NAMESPACE"])
            .or_else(|| {
                file(SA_NAMESPACE)
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .map(|s| (SA_NAMESPACE.to_owned(), s))
            })
            .unwrap_or_else(|| ("default".into(), "default".into()));
        let (app_src, app) =
            var(&["TEND_APP", "APP_NAME"]).unwrap_or_else(|| ("default".into(), "default".into()));
        let (pod_src, pod) = match var(&["TEND_POD", "POD_NAME", "HOSTNAME"]) {
            Some(v) => v,
            None => {
                let h = nix::unistd::gethostname()
                    .map_err(|e| format!("kernel hostname: cannot read it: {e}"))?;
                (
                    "kernel hostname".to_owned(),
                    h.to_string_lossy().into_owned(),
                )
            }
        };
        validate_component(&ns_src, &namespace)?;
        validate_component(&app_src, &app)?;
        validate_component(&pod_src, &pod)?;
        Ok(Identity {
            namespace,
            app,
            pod,
        })
    }

    /// The service's directory below `root`.
    pub fn service_dir(&self, root: &std::path::Path, service: &str) -> PathBuf {
        root.join(&self.namespace)
            .join(&self.app)
            .join(&self.pod)
            .join(service)
    }
}

/// Checks one path component against [`crate::name::RULE`]; the error names
/// `source` (the variable or file it came from) and the value.
pub fn validate_component(source: &str, value: &str) -> Result<(), String> {
    if crate::name::is_valid(value) {
        Ok(())
    } else {
        // escape_debug: a value with a newline, NUL or escape sequence (a hostile HOSTNAME)
        // must still give one readable line on stderr.
        Err(format!(
            "{source}: '{}' is not a valid path component (expected {})",
            value.escape_debug(),
            crate::name::RULE
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(vars: &[(&str, &str)], ns_file: Option<&str>) -> Result<Identity, String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let f = ns_file.map(str::to_owned);
        Identity::resolve(&|k| m.get(k).cloned(), &|_| f.clone())
    }

    #[test]
    fn order_of_sources() {
        let id = resolve(
            &[
                ("TEND_NAMESPACE", "a"),
                ("POD_NAMESPACE", "b"),
                ("APP_NAME", "web"),
                ("POD_NAME", "p-1"),
                ("HOSTNAME", "h"),
            ],
            Some("c\n"),
        )
        .unwrap();
        assert_eq!(
            (id.namespace.as_str(), id.app.as_str(), id.pod.as_str()),
            ("a", "web", "p-1")
        );
        let id = resolve(&[("HOSTNAME", "h")], Some(" kube-ns \n")).unwrap();
        assert_eq!(
            (id.namespace.as_str(), id.app.as_str(), id.pod.as_str()),
            ("kube-ns", "default", "h")
        );
        let id = resolve(&[("TEND_POD", "x")], None).unwrap();
        assert_eq!(id.namespace, "default");
    }

    #[test]
    fn bad_components_name_variable_and_value() {
        let e = resolve(&[("TEND_APP", "a/b"), ("HOSTNAME", "h")], None).unwrap_err();
        assert_eq!(
            e,
            "TEND_APP: 'a/b' is not a valid path component (expected [A-Za-z0-9][A-Za-z0-9._-]{0,252})"
        );
        assert!(
            resolve(&[("POD_NAME", ".."), ("HOSTNAME", "h")], None)
                .unwrap_err()
                .starts_with("POD_NAME: '..'")
        );
        assert!(validate_component("x", "").is_err());
        assert!(validate_component("x", "-a").is_err());
        assert!(validate_component("x", &"a".repeat(253)).is_ok());
        assert!(validate_component("x", &"a".repeat(254)).is_err());
        assert!(validate_component("x", "web-1.svc_2").is_ok());
    }

    #[test]
    fn hostile_value_stays_on_one_line() {
        // Found by fuzzing: a NUL or newline in the value was copied into the message raw.
        let e = validate_component("HOSTNAME", "a\nb\0").unwrap_err();
        assert!(e.starts_with("HOSTNAME: 'a\\nb\\0' is not"), "{e}");
    }
}
