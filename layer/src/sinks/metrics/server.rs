//! The Prometheus endpoint: `GET /metrics` on a thread of its own, with std's
//! `TcpListener`.
//!
//! Each scrape makes a fresh [`Snapshot`](super::model::Snapshot) on this thread (the
//! program's threads are never asked for anything) and answers it in the text format,
//! one connection at a time, `Connection: close`. A client that sends nothing for a
//! few seconds is dropped, so one stuck scraper cannot hold the endpoint. Stopping sets
//! a flag and wakes the blocked `accept` with a connection of its own.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::prometheus::CONTENT_TYPE;

/// How long a scraper may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Renders the body of one scrape.
pub(crate) type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// A running endpoint.
pub(crate) struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `host:port` and starts serving; `Err` says why not (the port is taken,
    /// the host does not resolve).
    pub(crate) fn start(
        host: &str,
        port: u16,
        render: Render,
        scraped: Arc<dyn Fn(bool) + Send + Sync>,
    ) -> std::io::Result<Server> {
        let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
        let listener = TcpListener::bind(&addrs[..])?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("spanlab-prometheus".into())
            .spawn(move || {
                super::quiet_thread();
                for stream in listener.incoming() {
                    if stopping.load(Acquire) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    // Counted before the connection closes: a scraper that has its
                    // answer sees it counted.
                    scraped(serve(&stream, &render));
                    drop(stream);
                }
            })?;
        Ok(Server {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the thread (a scrape in progress finishes).
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Release);
        // Wake `accept`; if the connection fails the listener is gone already.
        let _ = TcpStream::connect_timeout(&wake_addr(self.addr), Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The address to connect to for `addr` (an unspecified address is reached on
/// loopback).
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let mut to = addr;
    if addr.ip().is_unspecified() {
        to.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    to
}

/// Answers one connection; whether it was a scrape answered in full.
fn serve(stream: &TcpStream, render: &Render) -> bool {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let Ok(reader) = stream.try_clone() else {
        return false;
    };
    let mut reader = BufReader::new(reader);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return false;
    }
    // The headers, up to the empty line (bounded, for a client that sends junk).
    let mut line = String::new();
    for _ in 0..100 {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.trim_end().is_empty() => break,
            Ok(_) => {}
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => ("200 OK", CONTENT_TYPE, render()),
        ("GET" | "HEAD", _) => ("404 Not Found", "text/plain", "try /metrics\n".into()),
        _ => ("405 Method Not Allowed", "text/plain", String::new()),
    };
    let ok = status.starts_with("200");
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let mut stream = stream;
    let written = stream.write_all(head.as_bytes()).and_then(|()| {
        if method == "HEAD" {
            Ok(())
        } else {
            stream.write_all(body.as_bytes())
        }
    });
    ok && written.and_then(|()| stream.flush()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::sync::atomic::AtomicU64;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn serves_metrics_counts_scrapes_and_stops() {
        let served = Arc::new(AtomicU64::new(0));
        let counted = served.clone();
        let mut server = Server::start(
            "127.0.0.1",
            0,
            Arc::new(|| "a_total 1\n".to_owned()),
            Arc::new(move |ok| {
                if ok {
                    counted.fetch_add(1, Relaxed);
                }
            }),
        )
        .unwrap();
        let answer = get(server.addr(), "/metrics");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.contains(CONTENT_TYPE));
        assert!(answer.ends_with("\r\n\r\na_total 1\n"), "{answer}");
        assert!(get(server.addr(), "/").starts_with("HTTP/1.1 404"));
        let addr = server.addr();
        server.stop();
        assert_eq!(served.load(Relaxed), 1);
        assert!(TcpStream::connect(addr).is_err(), "stopped");
    }

    #[test]
    fn a_taken_port_is_an_error() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let started = Server::start("127.0.0.1", port, Arc::new(String::new), Arc::new(|_| ()));
        assert!(started.is_err());
    }
}
