//! The model stand-in (`baton-standin`): started per pool, with its request log and its fault
//! controls, and how the tests read the prompts a request carried.

use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::proc::{bin, Proc};

/// The model stand-in.
pub struct Standin {
    pub addr: String,
    _proc: Proc,
}

impl Standin {
    pub fn start() -> Result<Self> {
        Self::start_with(&[])
    }

    /// The stand-in started with these arguments (`--answers DIR`, say).
    pub fn start_with(args: &[&str]) -> Result<Self> {
        let mut child = Command::new(bin("baton-standin"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting baton-standin")?;
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        let addr = line
            .trim()
            .strip_prefix("BATON_STANDIN_ADDR=")
            .with_context(|| format!("stand-in printed {line:?}"))?
            .to_owned();
        Ok(Self {
            addr,
            _proc: Proc {
                child,
                name: "baton-standin".into(),
            },
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn http(&self, method: &str, path: &str, body: &str) -> Result<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.addr)?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        let text = String::from_utf8_lossy(&out).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").context("no HTTP header end")?;
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            bail!("unexpected chunked response");
        }
        Ok(body.to_owned())
    }

    /// Every request body the stand-in served, oldest first.
    pub fn requests(&self) -> Result<Vec<Value>> {
        Ok(serde_json::from_str(&self.http(
            "GET",
            "/_requests",
            "",
        )?)?)
    }

    /// The `x-api-key` each messages request arrived with, oldest first.
    pub fn keys(&self) -> Result<Vec<String>> {
        Ok(serde_json::from_str(&self.http("GET", "/_keys", "")?)?)
    }

    /// Every `Read` the CLI answered: (path, found, content), oldest first.
    pub fn reads(&self) -> Result<Vec<(String, bool, String)>> {
        let all: Vec<Value> = serde_json::from_str(&self.http("GET", "/_reads", "")?)?;
        Ok(all
            .iter()
            .map(|r| {
                let s = |k: &str| r[k].as_str().unwrap_or("").to_owned();
                (
                    s("path"),
                    r["found"].as_bool().unwrap_or(false),
                    s("content"),
                )
            })
            .collect())
    }

    /// Sets a pool-wide fault (see the stand-in's docs).
    pub fn control(&self, body: Value) -> Result<()> {
        self.http("POST", "/_control", &body.to_string())?;
        Ok(())
    }
}

/// The user prompts of one recorded request, oldest first (system reminders and tool results
/// left out), as the stand-in itself reads them.
pub fn prompts_of(request: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for m in request
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if m.get("role").and_then(Value::as_str) != Some("user") {
            continue;
        }
        match m.get("content") {
            Some(Value::String(s)) => out.push(s.clone()),
            Some(Value::Array(blocks)) => {
                for b in blocks {
                    if b.get("type").and_then(Value::as_str) == Some("text") {
                        let t = b.get("text").and_then(Value::as_str).unwrap_or("");
                        if !t.trim_start().starts_with("<system-reminder>") {
                            out.push(t.to_owned());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The first recorded request whose newest prompt contains `marker`.
pub fn first_request_with<'a>(requests: &'a [Value], marker: &str) -> Option<&'a Value> {
    requests
        .iter()
        .find(|r| prompts_of(r).last().is_some_and(|p| p.contains(marker)))
}
