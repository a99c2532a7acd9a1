//! A loopback TCP proxy in front of a database: the tests cut every connection and refuse
//! new ones to make the database "go away", or freeze every connection (open, and silent,
//! as a network that drops every packet), or lose one statement's answer after the server
//! committed it, and restore it, with no privileges needed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A loopback TCP proxy in front of the database that can cut every connection and refuse
/// new ones.
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
    frozen: tokio::sync::watch::Sender<bool>,
    lose: Arc<Mutex<Option<LoseAnswer>>>,
    task: tokio::task::JoinHandle<()>,
}

/// The answer to lose: that of the next statement whose `CommandComplete` tag starts with
/// `tag`; `lost` hears when it was.
struct LoseAnswer {
    tag: String,
    lost: tokio::sync::oneshot::Sender<()>,
    /// Keep the connection open and silent afterwards (a network partition the server
    /// does not notice), instead of closing it.
    freeze: bool,
}

impl Proxy {
    pub async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (frozen, _) = tokio::sync::watch::channel(false);
        let lose = Arc::new(Mutex::new(None));
        let task = {
            let up = up.clone();
            let cut = cut.clone();
            let frozen = frozen.clone();
            let lose = lose.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    if !up.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let mut cut = cut.subscribe();
                    let mut frozen = frozen.subscribe();
                    let upstream = upstream.clone();
                    let lose = lose.clone();
                    tokio::spawn(async move {
                        let Ok(outbound) = tokio::net::TcpStream::connect(upstream).await else {
                            return;
                        };
                        let (mut from_server, mut to_server) = outbound.into_split();
                        let (mut from_client, mut to_client) = inbound.into_split();
                        let pumps = async {
                            tokio::select! {
                                _ = tokio::io::copy(&mut from_client, &mut to_server) => false,
                                froze = answers(&mut from_server, &mut to_client, &lose) => froze,
                            }
                        };
                        let froze = tokio::select! {
                            froze = pumps => froze,
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
            lose,
            task,
        }
    }

    /// The next statement whose `CommandComplete` tag starts with `tag` (`UPDATE`, `SELECT`,
    /// `DELETE`, `COMMIT`...) runs, and its answer is lost: the proxy drops it and what
    /// follows up to the server's `ReadyForQuery` (the statement's implicit transaction has
    /// committed by then), and closes its connection. The receiver hears when it happened.
    pub fn lose_next_answer(&self, tag: &str) -> tokio::sync::oneshot::Receiver<()> {
        self.arm(tag, false)
    }

    /// Like [`lose_next_answer`](Self::lose_next_answer), but the connection then stays
    /// open and silent both ways until [`down`](Self::down), whatever the client does (a
    /// network partition the server does not notice): a transaction the statement was part
    /// of stays open on the server, its locks held.
    pub fn freeze_at_next_answer(&self, tag: &str) -> tokio::sync::oneshot::Receiver<()> {
        self.arm(tag, true)
    }

    fn arm(&self, tag: &str, freeze: bool) -> tokio::sync::oneshot::Receiver<()> {
        let (lost, heard) = tokio::sync::oneshot::channel();
        *self.lose.lock().unwrap() = Some(LoseAnswer {
            tag: tag.to_owned(),
            lost,
            freeze,
        });
        heard
    }

    /// Refuses new connections, and keeps the open ones going (a firewall that lets
    /// established connections through, a listener out of file descriptors): a cancel
    /// request, which needs a connection of its own, cannot reach the server.
    pub fn refuse_new(&self) {
        self.up.store(false, Ordering::SeqCst);
    }

    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|generation| *generation += 1);
    }

    /// Cuts every open connection; new ones go through (a connection reset on the way).
    pub fn cut_open(&self) {
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

/// Copies the server's messages to the client, and loses the answer [`Proxy::lose_next_answer`]
/// asks for. Returns when either side ends, or once an answer was lost: whether the
/// connection is to be frozen then.
async fn answers(
    from_server: &mut tokio::net::tcp::OwnedReadHalf,
    to_client: &mut tokio::net::tcp::OwnedWriteHalf,
    lose: &Mutex<Option<LoseAnswer>>,
) -> bool {
    let mut buffer: Vec<u8> = Vec::new();
    // The offset of the next message not yet forwarded (messages are a type byte and a
    // length that counts itself); the single byte that answers an SSL request comes first.
    let mut first = true;
    let mut losing: Option<(tokio::sync::oneshot::Sender<()>, bool)> = None;
    let mut chunk = [0u8; 8192];
    loop {
        let Ok(read) = from_server.read(&mut chunk).await else {
            return false;
        };
        if read == 0 {
            return false;
        }
        buffer.extend_from_slice(&chunk[..read]);
        let mut forward = 0;
        if first && matches!(buffer[0], b'N' | b'S') && buffer.get(1).is_none_or(|b| *b == b'R') {
            forward = 1;
        }
        first = false;
        while let Some(header) = buffer.get(forward..forward + 5) {
            let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
            let Some(message) = buffer.get(forward..forward + 1 + length) else {
                break;
            };
            if losing.is_some() {
                if message[0] == b'Z' {
                    // Committed; the client never hears it.
                    let Some((lost, freeze)) = losing.take() else {
                        return false;
                    };
                    let _ = lost.send(());
                    if !freeze {
                        let _ = to_client.shutdown().await;
                    }
                    return freeze;
                }
                // Dropped, as everything up to the end of the answer.
                buffer.drain(forward..forward + 1 + length);
                continue;
            }
            if message[0] == b'C' {
                let mut armed = lose.lock().unwrap();
                if armed
                    .as_ref()
                    .is_some_and(|lose| message[5..].starts_with(lose.tag.as_bytes()))
                {
                    losing = armed.take().map(|lose| (lose.lost, lose.freeze));
                    drop(armed);
                    buffer.drain(forward..forward + 1 + length);
                    continue;
                }
            }
            forward += 1 + length;
        }
        if to_client.write_all(&buffer[..forward]).await.is_err() {
            return false;
        }
        buffer.drain(..forward);
    }
}
