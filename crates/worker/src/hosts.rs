//! Lists of hosts an operator allows (`--sandbox-allow-host`): exact names or addresses, or
//! `*.domain` for a domain's subdomains. Matching ignores case and IPv6 brackets; nothing
//! matches an empty list.

/// An operator's list of allowed hosts.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostList(Vec<String>);

impl HostList {
    /// The list from flag values (blank ones left out).
    pub(crate) fn new<S: AsRef<str>>(hosts: &[S]) -> Self {
        Self(
            hosts
                .iter()
                .map(|h| h.as_ref().trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        )
    }

    /// Whether `host` is on the list.
    pub(crate) fn allows(&self, host: &str) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        self.0.iter().any(|a| match a.strip_prefix("*.") {
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None => *a == host,
        })
    }

    /// True when nothing is allowed.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_addresses_and_subdomains() {
        let l = HostList::new(&["registry.example.com", "*.corp.example", "127.0.0.1", " "]);
        assert!(l.allows("REGISTRY.example.com"));
        assert!(l.allows("ci.corp.example"));
        assert!(l.allows("127.0.0.1"));
        assert!(!l.allows("corp.example"));
        assert!(!l.allows("localhost"));
        assert!(!l.allows("169.254.169.254"));
        assert!(!HostList::default().allows("registry.example.com"));
    }
}
