//! A stand-in rack written for one test: raw TCP, so it can behave the way a different or
//! hostile rack would (ignore framing, swallow a connection, send headers the mock never does).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the stand-in read it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Which connection it came on (0, 1, 2, … in accept order).
    pub connection: usize,
    /// The request line and headers, as sent.
    pub head: String,
    /// The body, read by Content-Length (chunked bodies are not read).
    pub body: Vec<u8>,
}

impl Seen {
    /// The request line.
    pub fn line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }

    /// Every value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }
}

/// What the stand-in does after reading a request.
pub enum Act {
    /// Writes these bytes and reads the next request on the connection.
    Answer(Vec<u8>),
    /// Writes these bytes, then waits this long before going on.
    AnswerAfter(Duration, Vec<u8>),
    /// Writes these bytes, then reads and discards everything that follows on the connection
    /// without ever answering again (a rack that treats the rest as a byte stream).
    AnswerThenSwallow(Vec<u8>),
}

/// A plain answer with a JSON body and keep-alive.
pub fn json(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A running stand-in rack.
pub struct StandIn {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl StandIn {
    /// Starts it; `act` decides what to do with each request.
    pub async fn start(act: impl Fn(&Seen) -> Act + Send + Sync + 'static) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let act = Arc::new(act);
        let connections = Arc::new(AtomicUsize::new(0));
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let connection = connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(
                    stream,
                    connection,
                    Arc::clone(&log),
                    Arc::clone(&act),
                ));
            }
        });
        StandIn { url, seen }
    }

    /// Every request read so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    /// The requests whose request line contains `needle`.
    pub fn seen_with(&self, needle: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.line().contains(needle))
            .collect()
    }
}

async fn serve<F>(mut stream: TcpStream, connection: usize, log: Arc<Mutex<Vec<Seen>>>, act: Arc<F>)
where
    F: Fn(&Seen) -> Act + Send + Sync + 'static,
{
    let mut buffer = Vec::new();
    loop {
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        buffer.drain(..head_end);
        let mut seen = Seen {
            connection,
            head,
            body: Vec::new(),
        };
        // Read the body the head announces: a rack that believes Content-Length waits for it.
        let length: usize = seen
            .header("content-length")
            .first()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buffer.len() < length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        seen.body = buffer.drain(..length).collect();
        log.lock().expect("lock").push(seen.clone());
        match act(&seen) {
            Act::Answer(bytes) => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Act::AnswerAfter(delay, bytes) => {
                tokio::time::sleep(delay).await;
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Act::AnswerThenSwallow(bytes) => {
                let _ = stream.write_all(&bytes).await;
                let mut sink = [0u8; 4096];
                while let Ok(n) = stream.read(&mut sink).await {
                    if n == 0 {
                        return;
                    }
                }
                return;
            }
        }
    }
}
