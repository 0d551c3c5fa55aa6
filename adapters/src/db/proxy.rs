//! Partitions without root: a TCP proxy per directed link on loopback.
//!
//! Each node's connections to a peer go through the link's proxy (its
//! replication subscriptions point at the proxy's address, not the
//! peer's). The harness decides when a link is cut; the proxy decides what
//! a cut does to the bytes:
//!
//! - [`Cut::Hold`]: stop forwarding in both directions, keep what arrives,
//!   and deliver it when the link heals (a partition that TCP rides out);
//! - [`Cut::Drop`]: close every connection through the link and refuse new
//!   ones until it heals (a partition long enough for TCP to give up).
//!
//! A constant latency can be added to every chunk forwarded; this kernel
//! has no `tc netem`, so the proxy is also where latency comes from.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What a cut link does to its traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    Hold,
    Drop,
}

/// The link's state, as the harness sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkState {
    /// `None`: healed.
    pub cut: Option<Cut>,
    /// Added to every chunk in both directions.
    pub latency: Duration,
}

/// A running proxy for one directed link.
pub struct LinkProxy {
    addr: SocketAddr,
    state: watch::Sender<LinkState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LinkProxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<LinkProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (state, rx) = watch::channel(LinkState {
            cut: None,
            latency: Duration::ZERO,
        });
        let rx = Arc::new(rx);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let mut rx = (*rx).clone();
                tokio::spawn(async move {
                    // A new connection waits while the link is held, and is
                    // closed at once while it drops.
                    if !open(&mut rx).await {
                        return;
                    }
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let up = tokio::spawn(pump(cr, sw, rx.clone()));
                    let down = tokio::spawn(pump(sr, cw, rx));
                    // When either direction ends, both do.
                    tokio::select! {
                        _ = up => {},
                        _ = down => {},
                    }
                });
            }
        });
        Ok(LinkProxy { addr, state, task })
    }

    /// The address to connect to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set(&self, s: LinkState) {
        let _ = self.state.send(s);
    }

    pub fn cut(&self, how: Cut) {
        self.state.send_modify(|s| s.cut = Some(how));
    }

    pub fn heal(&self) {
        self.state.send_modify(|s| s.cut = None);
    }
}

/// Waits while the link is held; `false` once it drops (or the proxy is
/// gone), `true` when it is open.
async fn open(rx: &mut watch::Receiver<LinkState>) -> bool {
    loop {
        let cut = rx.borrow_and_update().cut;
        match cut {
            None => return true,
            Some(Cut::Drop) => return false,
            Some(Cut::Hold) => {
                if rx.changed().await.is_err() {
                    return false;
                }
            }
        }
    }
}

/// Forwards one direction until EOF, an error, or a `Drop` cut.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut rx: watch::Receiver<LinkState>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Read only while the link is open: held bytes wait in the
        // kernel's buffers (and the sender's), as on a stalled network.
        if !open(&mut rx).await {
            return;
        }
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            changed = rx.changed() => {
                if changed.is_err() {
                    return;
                }
                continue; // re-check the state before reading
            }
        };
        let latency = rx.borrow().latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        // A chunk read before a cut is delivered after it heals (hold) or
        // not at all (drop).
        if !open(&mut rx).await {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
