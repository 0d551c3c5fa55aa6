//! The loopback TCP proxy that makes partitions without root: an open link
//! forwards, a held link delivers what it kept once healed, a dropped link
//! closes its connections and refuses new ones, latency delays each chunk.

use std::time::{Duration, Instant};

use ladon_adapters::db::proxy::{Cut, LinkProxy, LinkState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An echo server on loopback.
async fn echo() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

async fn roundtrip(s: &mut TcpStream, msg: &[u8], within: Duration) -> Option<Vec<u8>> {
    s.write_all(msg).await.ok()?;
    let mut buf = vec![0u8; msg.len()];
    match tokio::time::timeout(within, s.read_exact(&mut buf)).await {
        Ok(Ok(_)) => Some(buf),
        _ => None,
    }
}

#[tokio::test]
async fn hold_delivers_after_the_heal_and_drop_closes() {
    let proxy = LinkProxy::start(echo().await).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(
        roundtrip(&mut s, b"one", Duration::from_secs(5))
            .await
            .as_deref(),
        Some(&b"one"[..])
    );

    proxy.cut(Cut::Hold);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        roundtrip(&mut s, b"two", Duration::from_millis(300)).await,
        None
    );
    proxy.heal();
    let mut buf = [0u8; 3];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"two", "held bytes arrive after the heal");

    proxy.cut(Cut::Drop);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = s.write_all(b"three").await;
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .expect("the dropped link closes the connection");
    assert!(n.is_err() || rest.is_empty(), "{rest:?}");
    // A new connection while dropped is closed without reaching the target.
    let mut s2 = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(
        roundtrip(&mut s2, b"four", Duration::from_millis(300)).await,
        None
    );

    proxy.heal();
    let mut s3 = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(
        roundtrip(&mut s3, b"five", Duration::from_secs(5))
            .await
            .as_deref(),
        Some(&b"five"[..])
    );
}

#[tokio::test]
async fn latency_delays_each_direction() {
    let proxy = LinkProxy::start(echo().await).await.unwrap();
    proxy.set(LinkState {
        cut: None,
        latency: Duration::from_millis(100),
    });
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    let t0 = Instant::now();
    assert!(roundtrip(&mut s, b"x", Duration::from_secs(5))
        .await
        .is_some());
    // Once each way.
    assert!(
        t0.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t0.elapsed()
    );
}
