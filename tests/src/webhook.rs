//! A local HTTP server that receives webhooks: it records each request (headers and body) and
//! answers every one with the status it was started with. Plain HTTP/1.1 over a loopback
//! socket, one request per connection, as much as a webhook receiver needs. [`Delivery::verify`]
//! checks a delivery the way the README tells a receiver to: the signature over
//! `"<timestamp>.<body>"`, and a timestamp no older than [`REPLAY_WINDOW`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request received.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: Instant,
}

/// How old a delivery's timestamp may be before a receiver refuses it as a replay (the README's
/// advice).
pub const REPLAY_WINDOW: Duration = Duration::from_secs(300);

/// `sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature(secret: &str, timestamp: &str, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

impl Delivery {
    /// Checks the delivery as a receiver should: a timestamp within [`REPLAY_WINDOW`] of now,
    /// and a signature (compared in constant time) over the timestamp and the body.
    ///
    /// # Errors
    /// What is wrong with it.
    pub fn verify(&self, secret: &str) -> Result<(), String> {
        let ts = self
            .header("x-baton-timestamp")
            .ok_or("no X-Baton-Timestamp header")?;
        let secs: u64 = ts
            .parse()
            .map_err(|_| format!("X-Baton-Timestamp {ts:?} is not unix seconds"))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        if now.abs_diff(secs) > REPLAY_WINDOW.as_secs() {
            return Err(format!(
                "timestamp {secs} is more than {REPLAY_WINDOW:?} from now ({now}): a replay?"
            ));
        }
        let given = self
            .header("x-baton-signature")
            .ok_or("no X-Baton-Signature header")?;
        let want = signature(secret, ts, &self.body);
        let same = given.len() == want.len()
            && given
                .bytes()
                .zip(want.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return Err(format!("signature {given} is not {want}"));
        }
        Ok(())
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The receiver; stops when dropped.
pub struct Receiver {
    pub port: u16,
    received: Arc<Mutex<Vec<Delivery>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Listens on a free loopback port; answers every request with `status`.
    pub async fn start(status: u16) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    if let Some(d) = read_request(&mut sock).await {
                        log.lock().expect("receiver log").push(d);
                    }
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Ok(Self {
            port,
            received,
            task,
        })
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Everything received so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.received.lock().expect("receiver log").clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Delivery> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Delivery {
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    })
}
