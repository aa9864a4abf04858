//! What a Redis URL names: one server, a Cluster (by seed nodes), or a master that Sentinels
//! keep track of. Parsed here, checked before anything connects, and described without its
//! password for logs and errors.

use std::fmt;

/// The deployment a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `redis://` or `rediss://`: one server (a URL redis-rs parses as it is).
    Single { url: String },
    /// `redis+cluster://` or `rediss+cluster://`: seed nodes of a Redis Cluster, each as a
    /// single-server URL with the credentials.
    Cluster { nodes: Vec<String> },
    /// `redis+sentinel://` or `rediss+sentinel://`: the Sentinels (as single-server URLs,
    /// without credentials) and the name of the master they watch; `master_url` carries the
    /// credentials and database for the master (its host is a placeholder).
    Sentinel {
        sentinels: Vec<String>,
        master_name: String,
        master_url: String,
    },
}

/// Why a URL names nothing baton can connect to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--redis-url {url}: {problem}")]
pub struct TargetError {
    /// The URL without its password.
    pub url: String,
    pub problem: String,
}

/// A URL with the password (if any) replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority_end, _) = rest
        .char_indices()
        .find(|(_, c)| *c == '/' || *c == '#' || *c == '?')
        .unwrap_or((rest.len(), ' '));
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let hidden = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                "***".to_owned()
            };
            format!("{scheme}://{hidden}@{hosts}{tail}")
        }
        None => url.to_owned(),
    }
}

impl Target {
    /// Parses a URL of one of the four forms (each also with TLS: `rediss`).
    ///
    /// # Errors
    /// An unknown scheme, no host, a Sentinel URL without a master name.
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        let fail = |problem: &str| TargetError {
            url: redact_url(url),
            problem: problem.to_owned(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| fail("expected a URL such as redis://host:6379"))?;
        let (base, kind) = match scheme {
            "redis" | "rediss" => {
                return Ok(Self::Single {
                    url: url.to_owned(),
                })
            }
            "redis+cluster" => ("redis", Kind::Cluster),
            "rediss+cluster" => ("rediss", Kind::Cluster),
            "redis+sentinel" => ("redis", Kind::Sentinel),
            "rediss+sentinel" => ("rediss", Kind::Sentinel),
            "unix" | "redis+unix" => {
                return Ok(Self::Single {
                    url: url.to_owned(),
                })
            }
            other => {
                return Err(fail(&format!(
                    "unknown scheme {other:?}: use redis://, rediss:// (TLS), redis+cluster:// or \
                     redis+sentinel:// (each also as rediss+…)"
                )))
            }
        };
        let (authority, tail) = match rest.find(['/', '#', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let hosts: Vec<&str> = hosts.split(',').map(str::trim).collect();
        if hosts.iter().any(|h| h.is_empty()) {
            return Err(fail("expected host:port[,host:port...] after ://"));
        }
        let fragment = tail.find('#').map_or("", |i| &tail[i..]);
        let path = tail.split(['#', '?']).next().unwrap_or("");
        let creds = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
        match kind {
            Kind::Cluster => {
                if !path.trim_matches('/').is_empty() {
                    return Err(fail(
                        "a Redis Cluster has only database 0: remove the /path",
                    ));
                }
                Ok(Self::Cluster {
                    nodes: hosts
                        .iter()
                        .map(|h| format!("{base}://{creds}{h}{fragment}"))
                        .collect(),
                })
            }
            Kind::Sentinel => {
                let mut segments = path.trim_start_matches('/').splitn(2, '/');
                let master_name = segments.next().unwrap_or("").to_owned();
                if master_name.is_empty() {
                    return Err(fail(
                        "a Sentinel URL names the master: redis+sentinel://host:26379,host:26379/<master name>[/db]",
                    ));
                }
                let db = segments.next().filter(|d| !d.is_empty());
                let db_path = db.map(|d| format!("/{d}")).unwrap_or_default();
                Ok(Self::Sentinel {
                    sentinels: hosts
                        .iter()
                        .map(|h| format!("{base}://{h}{fragment}"))
                        .collect(),
                    master_name,
                    master_url: format!("{base}://{creds}master{db_path}{fragment}"),
                })
            }
        }
    }

    /// True when the connections use TLS.
    pub fn uses_tls(&self) -> bool {
        let first = match self {
            Self::Single { url } => url,
            Self::Cluster { nodes } => &nodes[0],
            Self::Sentinel { master_url, .. } => master_url,
        };
        first.starts_with("rediss://")
    }
}

enum Kind {
    Cluster,
    Sentinel,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Single { url } => write!(f, "{}", redact_url(url)),
            Self::Cluster { nodes } => {
                let nodes: Vec<String> = nodes.iter().map(|n| redact_url(n)).collect();
                write!(f, "Redis Cluster (seeds {})", nodes.join(", "))
            }
            Self::Sentinel {
                sentinels,
                master_name,
                ..
            } => write!(
                f,
                "master {master_name:?} via Sentinels {}",
                sentinels.join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_names_its_deployment() {
        assert_eq!(
            Target::parse("rediss://u:p@h:6380/2").unwrap(),
            Target::Single {
                url: "rediss://u:p@h:6380/2".into()
            }
        );
        assert_eq!(
            Target::parse("redis+cluster://:pw@a:7000,b:7001").unwrap(),
            Target::Cluster {
                nodes: vec!["redis://:pw@a:7000".into(), "redis://:pw@b:7001".into()]
            }
        );
        assert_eq!(
            Target::parse("rediss+sentinel://u:p@s1:26379,s2:26380/mymaster/3#insecure").unwrap(),
            Target::Sentinel {
                sentinels: vec![
                    "rediss://s1:26379#insecure".into(),
                    "rediss://s2:26380#insecure".into()
                ],
                master_name: "mymaster".into(),
                master_url: "rediss://u:p@master/3#insecure".into(),
            }
        );
        assert!(Target::parse("rediss+cluster://a:1").unwrap().uses_tls());
        assert!(!Target::parse("redis+sentinel://a:1/m").unwrap().uses_tls());
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_password() {
        for (url, says) in [
            ("http://h:1", "unknown scheme"),
            ("redis+sentinel://u:secret@s:26379", "names the master"),
            ("redis+cluster://u:secret@a:1,,b:2", "host:port"),
            ("redis+cluster://a:1/2", "database 0"),
            ("localhost:6379", "expected a URL"),
        ] {
            let e = Target::parse(url).unwrap_err().to_string();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("secret"), "{url}: {e}");
        }
        assert_eq!(
            redact_url("rediss://user:pw@h:1/0"),
            "rediss://user:***@h:1/0"
        );
        assert_eq!(redact_url("redis://:pw@h:1"), "redis://:***@h:1");
        assert_eq!(redact_url("redis://h:1"), "redis://h:1");
    }
}
