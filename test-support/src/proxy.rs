//! A loopback TCP proxy in front of a database: the tests cut every connection and refuse
//! new ones to make the database "go away", or freeze every connection (open, and silent,
//! as a network that drops every packet), and restore it, with no privileges needed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A loopback TCP proxy in front of the database that can cut every connection and refuse
/// new ones.
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
    frozen: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (frozen, _) = tokio::sync::watch::channel(false);
        let task = {
            let up = up.clone();
            let cut = cut.clone();
            let frozen = frozen.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    if !up.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let mut cut = cut.subscribe();
                    let mut frozen = frozen.subscribe();
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await
                        else {
                            return;
                        };
                        let froze = tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => false,
                            _ = cut.changed() => false,
                            _ = frozen.wait_for(|frozen| *frozen) => true,
                        };
                        if froze {
                            // Open and silent until cut: nothing more goes through.
                            let _ = cut.changed().await;
                        }
                    });
                }
            })
        };
        Self {
            addr,
            up,
            cut,
            frozen,
            task,
        }
    }

    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|generation| *generation += 1);
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
        self.frozen.send_replace(false);
    }

    /// Every connection, open or new, stays open but carries nothing more (a network that
    /// drops every packet: no reset, no end of stream) until [`down`](Self::down).
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
