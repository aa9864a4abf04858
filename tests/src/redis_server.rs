//! Real `redis-server` processes on free loopback ports, one per test (a fault test must be
//! able to kill its own).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::proc::{free_port, Proc, TempDir};

/// A real redis-server on a free port.
pub struct Redis {
    pub port: u16,
    pub dir: TempDir,
    pub proc: Option<Proc>,
    extra: Vec<String>,
}

impl Redis {
    /// Starts one without persistence.
    pub fn start() -> Result<Self> {
        Self::start_with(&[])
    }

    /// Starts one with extra config arguments (e.g. `["--appendonly", "yes"]`).
    pub fn start_with(extra: &[&str]) -> Result<Self> {
        let mut r = Self {
            port: free_port(),
            dir: TempDir::new("redis"),
            proc: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        r.spawn()?;
        Ok(r)
    }

    fn spawn(&mut self) -> Result<()> {
        let child = Command::new("redis-server")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--save")
            .arg("")
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (is it installed? scripts/test.sh installs it)")?;
        self.proc = Some(Proc {
            child,
            name: "redis-server".into(),
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("redis-server did not start on port {}", self.port)
    }

    /// Kills it (SIGKILL).
    pub fn kill(&mut self) {
        self.proc = None;
    }

    /// Starts it again on the same port and folder.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()
    }

    /// Starts it again after it stopped, on the same port and folder (its AOF, if any, is
    /// loaded back).
    pub fn restart_keeping_data(&mut self) -> Result<()> {
        self.proc = None;
        self.spawn()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A fresh connection.
    pub async fn conn(&self) -> Result<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url())?;
        let cfg =
            redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
        Ok(client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?)
    }
}
