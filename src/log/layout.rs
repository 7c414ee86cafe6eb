//! `<root>/<namespace>/<app>/<pod>/<service>`: identity from the environment, validated.

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
        Err("log layout: not implemented yet".into())
    }
}
