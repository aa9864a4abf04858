//! Host allow lists: which hosts a document may make this worker reach. One parser and one
//! matcher for every list (`--webhook-allow` for webhooks, `--sandbox-allow-host` for a plan's
//! remote MCP servers), so that an entry means the same wherever it is written.

/// A list of allowed hosts: exact names or IP addresses, or `*.example.com` for the
/// subdomains of example.com (not example.com itself). Matching ignores case and the brackets
/// of an IPv6 address. Empty: nothing is allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HostList(Vec<String>);

impl HostList {
    /// The list as the flags give it (entries trimmed and lowercased, empty ones dropped).
    pub(crate) fn new<S: AsRef<str>>(entries: &[S]) -> Self {
        Self(
            entries
                .iter()
                .map(|h| {
                    h.as_ref()
                        .trim()
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_ascii_lowercase()
                })
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
        !host.is_empty()
            && self.0.iter().any(|a| match a.strip_prefix("*.") {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => *a == host,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_addresses_and_subdomain_patterns_match_and_nothing_else() {
        let l = HostList::new(&[
            "hooks.example.com",
            " *.corp.example",
            "127.0.0.1",
            "[::1]",
            "",
        ]);
        for ok in [
            "hooks.example.com",
            "HOOKS.example.com",
            "ci.corp.example",
            "127.0.0.1",
            "[::1]",
            "::1",
        ] {
            assert!(l.allows(ok), "{ok}");
        }
        for bad in [
            "corp.example",
            "evil.example.com",
            "localhost",
            "169.254.169.254",
            "",
            "xcorp.example",
        ] {
            assert!(!l.allows(bad), "{bad}");
        }
        assert!(
            !HostList::default().allows("hooks.example.com"),
            "empty allows nothing"
        );
    }
}
