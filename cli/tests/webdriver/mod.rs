//! Just enough WebDriver to drive headless Chromium from a test: chromedriver started
//! and stopped by its PID, its HTTP JSON API spoken over `std::net`.
//!
//! Nothing here reaches beyond this machine: chromedriver listens on 127.0.0.1 on a
//! port chosen free, and the browser is started with every background network service
//! off (the flags in [`CHROMIUM_FLAGS`]) and opens only `file://` pages.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The flags headless Chromium runs with (no sandbox: CI runs as root).
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
];

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A program on the `PATH`, or a clear failure naming the Debian package.
pub fn program(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: scripts/test-all.sh installs the Debian package {package}")
        })
}

/// A chromedriver process and one browser session; both end when it drops.
pub struct Browser {
    driver: Child,
    port: u16,
    session: Option<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    pub fn start() -> Browser {
        let chromium = program("chromium", "chromium");
        let chromedriver = program("chromedriver", "chromium-driver");
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser {
            driver,
            port,
            session: None,
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while browser
            .request("GET", "/status", None)
            .map(|v| v["value"]["ready"] == true)
            != Ok(true)
        {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!(
            "--user-data-dir={}",
            browser._profile.path().display()
        ));
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
            "goog:loggingPrefs": { "browser": "ALL" },
        }}});
        let reply = browser
            .request("POST", "/session", Some(capabilities))
            .expect("a session starts");
        let id = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {reply}"));
        browser.session = Some(id.to_string());
        browser
    }

    /// A command of the session: `POST /session/{id}{path}` (or GET without a body).
    pub fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let session = self.session.as_deref().expect("a session");
        let reply = self
            .request(method, &format!("/session/{session}{path}"), body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        if reply["value"]["error"].is_string() {
            panic!("{method} {path}: {}", reply["value"]);
        }
        reply["value"].clone()
    }

    /// Opens a local file.
    pub fn open(&self, file: &Path) {
        let url = format!("file://{}", file.display());
        self.command("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` in the page and returns its value.
    pub fn script(&self, script: &str) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Clicks the element `css` selects, as a user would (WebDriver's element click:
    /// scrolled into view, pointer events at its centre).
    pub fn click(&self, css: &str) {
        let element = self.command(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        let id = element[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {element}"));
        self.command("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// The browser's console messages at level SEVERE (uncaught errors among them).
    pub fn severe_log(&self) -> Vec<String> {
        let log = self.command("POST", "/se/log", Some(json!({ "type": "browser" })));
        let entries = log.as_array().cloned().unwrap_or_default();
        entries
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// A PNG screenshot of the window.
    pub fn screenshot(&self) -> Vec<u8> {
        let shot = self.command("GET", "/screenshot", None);
        base64(shot.as_str().expect("base64 PNG"))
    }

    /// One HTTP/1.1 request to chromedriver; the reply's JSON.
    fn request(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .map_err(|e| e.to_string())?;
        stream
            .write_all(body.as_bytes())
            .map_err(|e| e.to_string())?;
        // chromedriver keeps the connection open whatever the request says: read the
        // headers, then exactly the body they announce.
        let mut reply = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        let (head_end, length, chunked) = loop {
            let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the connection closed before a reply".into());
            }
            reply.extend_from_slice(&buf[..n]);
            if let Some(end) = reply.windows(4).position(|w| w == b"\r\n\r\n") {
                let headers = String::from_utf8_lossy(&reply[..end]).to_ascii_lowercase();
                let length = headers
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                break (
                    end + 4,
                    length,
                    headers.contains("transfer-encoding: chunked"),
                );
            }
        };
        let complete = |reply: &[u8]| match length {
            Some(length) => reply.len() >= head_end + length,
            None if chunked => reply.ends_with(b"0\r\n\r\n"),
            None => false,
        };
        while !complete(&reply) {
            let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
        }
        let body = String::from_utf8_lossy(&reply[head_end..]).into_owned();
        let content = if chunked { dechunk(&body) } else { body };
        serde_json::from_str(&content).map_err(|e| format!("{e}: {content}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            // Closes the browser; best effort on the way out of a failed test too.
            let _ = self.request("DELETE", &format!("/session/{session}"), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A chunked HTTP body, joined.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Standard base64 (with padding) decoded.
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        bits = bits << 6 | u32::from(v);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}
