//! A real browser for the dashboard tests: headless Chromium (Debian's `chromium`) driven over
//! WebDriver by `chromedriver` (Debian's `chromium-driver`), which `scripts/test.sh` installs.
//! Screenshots go to `target/test-artifacts/`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fantoccini::{Client, ClientBuilder};
use serde_json::json;

use crate::proc::{free_port, repo_root, Proc, TempDir};

/// chromedriver and a browser session, closed on drop.
pub struct Browser {
    pub client: Client,
    _driver: Proc,
    _profile: TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    pub async fn start() -> Result<Self> {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver (scripts/test.sh installs chromium-driver)")?;
        let driver = Proc {
            child,
            name: "chromedriver".into(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("chromedriver did not start on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = TempDir::new("chromium");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium_binary(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("opening a Chromium session")?;
        Ok(Self {
            client,
            _driver: driver,
            _profile: profile,
        })
    }

    /// Saves a screenshot of the page as `target/test-artifacts/<name>.png`; returns the path.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let png = self.client.screenshot().await?;
        let dir = repo_root().join("target/test-artifacts");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Ends the browser session (the browser exits with it).
    pub async fn close(self) -> Result<()> {
        self.client.close().await?;
        Ok(())
    }

    /// The page's visible text.
    pub async fn text(&self) -> Result<String> {
        Ok(self
            .client
            .find(fantoccini::Locator::Css("body"))
            .await?
            .text()
            .await?)
    }
}

fn chromium_binary() -> String {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(p).exists() {
            return p.to_owned();
        }
    }
    "chromium".to_owned()
}
