//! A plan's git repository (`repo` in a plan document): where the code the plan writes goes, as
//! one commit per task on a branch the user receives. This module validates what a document
//! may name: URLs the worker's git may reach without running commands or carrying secrets, and
//! ref names git accepts; and redacts URLs for display.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::PlanId;

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// Longest branch or ref name accepted.
pub const MAX_REF_LEN: usize = 200;

/// The `repo` option as stored: the branch is always set (defaulted at ingest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoSpec {
    pub url: RepoUrl,
    /// The branch, tag or commit the plan starts from; `None`: the remote's default branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<GitRef>,
    /// The branch baton writes.
    pub branch: GitRef,
}

impl RepoSpec {
    /// The branch a plan writes when the document names none: `baton/<plan id>`.
    ///
    /// # Errors
    /// When the plan id does not make a valid branch name (e.g. it ends in `.lock`).
    pub fn default_branch(plan: &PlanId) -> Result<GitRef, String> {
        format!("baton/{plan}")
            .parse()
            .map_err(|e| format!("the default branch baton/{plan} {e}; set repo.branch"))
    }
}

/// The `repo` option as a document gives it (the branch may be left to its default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoRequest {
    pub url: RepoUrl,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<GitRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<GitRef>,
}

impl RepoRequest {
    /// The spec for `plan`, with the default branch filled in.
    ///
    /// # Errors
    /// The default branch is not a valid name for this plan (the message names `repo.branch`).
    pub fn for_plan(&self, plan: &PlanId) -> Result<RepoSpec, String> {
        let branch = match &self.branch {
            Some(b) => b.clone(),
            None => RepoSpec::default_branch(plan)?,
        };
        Ok(RepoSpec {
            url: self.url.clone(),
            base: self.base.clone(),
            branch,
        })
    }
}

/// A repository URL a document may name: an absolute path, `file://`, `ssh://`, `git://`,
/// `http(s)://`, or `[user@]host:path`. Never a remote-helper form (`ext::`, `fd::`, which can
/// run commands), an option-like value, credentials (a password, a user or token in an http
/// URL, a query string), or a relative path (which would depend on the worker's directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoUrl(String);

impl RepoUrl {
    /// The URL as given (it carries no credentials: those are refused).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL for display: any user name and query string masked.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }

    /// The folder this URL names on the worker's own disk, when it names one: an absolute path,
    /// or the path of a `file:///path` URL (as written: whether a worker allows it is the
    /// worker's decision, `--repo-allow-path`). `None` for a network URL.
    pub fn local_path(&self) -> Option<&str> {
        let s = self.0.as_str();
        if s.starts_with('/') {
            return Some(s);
        }
        let (scheme, rest) = s.split_once("://")?;
        scheme.eq_ignore_ascii_case("file").then_some(rest)
    }
}

impl std::str::FromStr for RepoUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        check_url(s).map(|()| Self(s.to_owned()))
    }
}

impl TryFrom<String> for RepoUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<RepoUrl> for String {
    fn from(u: RepoUrl) -> String {
        u.0
    }
}

impl fmt::Display for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

const ALLOWED: &str = "use an absolute path, file://, ssh://, git://, https:// or user@host:path";

fn check_url(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > MAX_URL_LEN {
        return Err(format!("is longer than {MAX_URL_LEN} characters"));
    }
    if s.starts_with('-') {
        return Err("starts with '-', which git would read as an option".into());
    }
    if s.contains("::") {
        return Err(format!(
            "uses git's <transport>::<address> form (such as ext:: or fd::), which can run commands; {ALLOWED}"
        ));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace or control characters".into());
    }
    if let Some((scheme, rest)) = s.split_once("://") {
        return check_scheme_url(&scheme.to_ascii_lowercase(), rest);
    }
    if s.starts_with('/') {
        return Ok(());
    }
    // scp-like: [user@]host:path, with no '/' before the first ':'.
    match s.split_once(':') {
        Some((host, path)) if !host.contains('/') && !path.is_empty() => {
            let (user, host) = host.rsplit_once('@').unwrap_or(("", host));
            let plain = |t: &str| {
                t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            };
            if host.is_empty() || !plain(host) || !plain(user) {
                return Err(format!("is not a valid user@host:path address; {ALLOWED}"));
            }
            check_ssh_names(user, host)
        }
        _ => Err(format!(
            "is a relative path, which would depend on the worker's working directory; {ALLOWED}"
        )),
    }
}

fn check_scheme_url(scheme: &str, rest: &str) -> Result<(), String> {
    let authority = rest.split('/').next().unwrap_or("");
    let userinfo = authority.rsplit_once('@').map(|(u, _)| u);
    match scheme {
        "file" => {
            if !rest.starts_with('/') {
                return Err("file:// URLs must hold an absolute path (file:///path)".into());
            }
        }
        "ssh" | "git+ssh" | "ssh+git" => {
            if userinfo.is_some_and(|u| u.contains(':')) {
                return Err(
                    "carries a password; use ssh keys in the worker's own setup instead".into(),
                );
            }
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            check_ssh_names(userinfo.unwrap_or(""), host)?;
        }
        "http" | "https" | "git" => {
            if userinfo.is_some() {
                return Err(
                    "carries credentials (a user or token before '@'); use the worker's git credential helper instead"
                        .into(),
                );
            }
            if rest.contains('?') || rest.contains('#') {
                return Err(
                    "carries a query string or fragment (where tokens hide); name the repository only"
                        .into(),
                );
            }
        }
        other => return Err(format!("uses the unsupported scheme {other:?}; {ALLOWED}")),
    }
    if authority.is_empty() && scheme != "file" {
        return Err("names no host".into());
    }
    Ok(())
}

/// An ssh address's user and host: neither may start with `-`, which ssh would read as an
/// option (`-oProxyCommand=...` runs a command).
fn check_ssh_names(user: &str, host: &str) -> Result<(), String> {
    if host.starts_with('-') || host.starts_with("[-") {
        return Err(format!(
            "has the host {host:?}, which starts with '-' and ssh would read as an option"
        ));
    }
    if user.starts_with('-') {
        return Err(format!(
            "has the user {user:?}, which starts with '-' and ssh would read as an option"
        ));
    }
    Ok(())
}

/// Whether `c` is a Unicode format character (general category Cf): invisible characters that
/// reorder or hide text (bidirectional overrides, zero-width spaces), so a ref name holding one
/// reads as another. The ranges of Unicode 15.1.
pub fn is_format_char(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

/// Masks credentials in any text that may hold URLs (git's error messages, for instance):
/// the user information of every `scheme://user[:password]@` and every query string.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>'))
            .unwrap_or(tail.len());
        let (url, after) = tail.split_at(end);
        let authority_end = url.find('/').unwrap_or(url.len());
        let (authority, path) = url.split_at(authority_end);
        match authority.rsplit_once('@') {
            Some((_, host)) => {
                out.push_str("***@");
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        match path.split_once('?') {
            Some((p, _)) => {
                out.push_str(p);
                out.push_str("?***");
            }
            None => out.push_str(path),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A branch, tag or commit name as git's `check-ref-format` accepts it (with `--branch`'s rules
/// where they differ): no `..`, `@{`, `~^:?*[\`, spaces or control characters, no component
/// starting with `.` or ending with `.lock`, not starting with `-` or `/`, not ending with `/` or
/// `.`, not `@`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GitRef(String);

impl GitRef {
    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for GitRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        check_ref(s).map(|()| Self(s.to_owned()))
    }
}

impl TryFrom<String> for GitRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<GitRef> for String {
    fn from(r: GitRef) -> String {
        r.0
    }
}

impl fmt::Display for GitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_ref(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > MAX_REF_LEN {
        return Err(format!("is longer than {MAX_REF_LEN} characters"));
    }
    if s.starts_with('-') {
        return Err("starts with '-', which git would read as an option".into());
    }
    if s == "@" {
        return Err("is '@', which git refuses as a name".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(*c))
    {
        return Err(format!("contains {c:?}, which git refuses in a ref name"));
    }
    if let Some(c) = s.chars().find(|c| is_format_char(*c)) {
        return Err(format!(
            "contains the invisible format character U+{:04X}, which makes the name read as another",
            u32::from(c)
        ));
    }
    if s.contains("..") || s.contains("@{") || s.contains("//") {
        return Err("contains '..', '@{' or '//', which git refuses in a ref name".into());
    }
    if s.starts_with('/') || s.ends_with('/') || s.ends_with('.') {
        return Err("starts with '/' or ends with '/' or '.', which git refuses".into());
    }
    if s.split('/')
        .any(|part| part.starts_with('.') || part.ends_with(".lock"))
    {
        return Err(
            "has a part starting with '.' or ending with '.lock', which git refuses".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
