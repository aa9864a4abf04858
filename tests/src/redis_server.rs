//! Real `redis-server` processes on free loopback ports, one per test (a fault test must be
//! able to kill its own), and Redis Clusters made of them.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::proc::{free_port, Proc, TempDir};

/// `redis-cli -p <port> <args>`'s output.
pub fn redis_cli(port: u16, args: &[&str]) -> Result<String> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .context("running redis-cli")?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A real redis-server on a free port; or, made by [`Redis::cluster`], a Redis Cluster whose
/// nodes are in `nodes` (then `url` names the cluster and this value's own process is none).
pub struct Redis {
    pub port: u16,
    pub dir: TempDir,
    pub proc: Option<Proc>,
    extra: Vec<String>,
    /// The cluster's nodes (empty for a single server).
    pub nodes: Vec<Redis>,
    /// The URL clients use when it is not `redis://127.0.0.1:<port>`.
    url_override: Option<String>,
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
            nodes: Vec::new(),
            url_override: None,
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
        self.url_override
            .clone()
            .unwrap_or_else(|| format!("redis://127.0.0.1:{}", self.port))
    }

    /// This server alone, as a plain URL (for a cluster node: that node only).
    pub fn node_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A fresh connection to what `url` names (a Cluster connection for a cluster; for
    /// Sentinels, to the master they name, retried for up to 30 s while they fail over).
    pub async fn conn(&self) -> Result<baton_connect::Conn> {
        let connector = baton_connect::Connector::new(&baton_connect::RedisArgs {
            redis_url: self.url(),
            ..Default::default()
        })?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let attempt = connector
                .connect(baton_connect::Timeouts {
                    connect: Duration::from_secs(5),
                    response: Duration::from_secs(10),
                })
                .await;
            match attempt {
                Ok(c) => return Ok(c),
                Err(e) if Instant::now() > deadline || self.url_override.is_none() => {
                    return Err(e.into())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// A connection to this server alone (for a cluster node: commands about the node).
    pub async fn node_conn(&self) -> Result<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.node_url())?;
        let cfg =
            redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
        Ok(client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?)
    }

    /// A Redis Cluster of `masters` masters with one replica each, made with
    /// `redis-cli --cluster create`; returns once every node reports the cluster ok.
    pub fn cluster(masters: usize) -> Result<Self> {
        let mut nodes = Vec::new();
        for _ in 0..masters * 2 {
            nodes.push(Self::start_with(&[
                "--cluster-enabled",
                "yes",
                "--cluster-node-timeout",
                "3000",
                "--appendonly",
                "yes",
            ])?);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .context("redis-cli --cluster create")?;
        if !out.status.success() {
            bail!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for n in &nodes {
            loop {
                if redis_cli(n.port, &["cluster", "info"])?.contains("cluster_state:ok") {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("the cluster did not come up on port {}", n.port);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        // Replicas attach after the slots are assigned: wait for each to be synced.
        loop {
            let mut synced = 0;
            for n in &nodes {
                let info = redis_cli(n.port, &["info", "replication"])?;
                if info.contains("role:slave") && info.contains("master_link_status:up") {
                    synced += 1;
                }
            }
            if synced == masters {
                break;
            }
            if Instant::now() > deadline {
                bail!("the cluster's replicas did not sync ({synced} of {masters})");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let seeds: Vec<String> = addrs.iter().take(masters).cloned().collect();
        Ok(Self {
            port: nodes[0].port,
            dir: TempDir::new("cluster"),
            proc: None,
            extra: Vec::new(),
            url_override: Some(format!("redis+cluster://{}", seeds.join(","))),
            nodes,
        })
    }

    /// A master, one replica and three Sentinels watching the master as `baton-master`
    /// (quorum 2, down after 1 s). `nodes` holds them in that order; `url` is the
    /// `redis+sentinel://` URL.
    pub fn sentinel() -> Result<Self> {
        let master = Self::start_with(&["--appendonly", "yes"])?;
        let replica_of = master.port.to_string();
        let replica = Self::start_with(&[
            "--appendonly",
            "yes",
            "--replicaof",
            "127.0.0.1",
            &replica_of,
        ])?;
        let mut nodes = vec![master, replica];
        let mut sentinel_addrs = Vec::new();
        for _ in 0..3 {
            let dir = TempDir::new("sentinel");
            let conf = dir.path().join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "sentinel monitor baton-master 127.0.0.1 {replica_of} 2\n\
                     sentinel down-after-milliseconds baton-master 1000\n\
                     sentinel failover-timeout baton-master 10000\n"
                ),
            )?;
            let port = free_port();
            let child = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting redis-server --sentinel")?;
            nodes.push(Self {
                port,
                dir,
                proc: Some(Proc {
                    child,
                    name: "redis-sentinel".into(),
                }),
                extra: Vec::new(),
                nodes: Vec::new(),
                url_override: None,
            });
            sentinel_addrs.push(format!("127.0.0.1:{port}"));
        }
        // Ready when the replica is synced and every Sentinel knows the replica.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let synced = redis_cli(nodes[1].port, &["info", "replication"])?
                .contains("master_link_status:up");
            let mut known = 0;
            for s in &nodes[2..] {
                let info = redis_cli(s.port, &["sentinel", "master", "baton-master"])?;
                let mut fields = info.lines();
                while let Some(f) = fields.next() {
                    if f == "num-slaves" && fields.next() == Some("1") {
                        known += 1;
                    }
                }
            }
            if synced && known == 3 {
                break;
            }
            if Instant::now() > deadline {
                bail!("the Sentinel set-up did not come up (replica synced: {synced}, Sentinels that know it: {known})");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self {
            port: nodes[0].port,
            dir: TempDir::new("sentinels"),
            proc: None,
            extra: Vec::new(),
            url_override: Some(format!(
                "redis+sentinel://{}/baton-master",
                sentinel_addrs.join(",")
            )),
            nodes,
        })
    }
}
