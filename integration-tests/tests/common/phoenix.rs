//! A real OTLP receiver for the end-to-end tests: Arize Phoenix, run as a child process.
//!
//! ```ignore
//! let phoenix = Phoenix::start(); // ~15-20 s: a fresh server with an in-memory database
//! // export to phoenix.grpc_endpoint() (OTLP/gRPC) or
//! // format!("{}/v1/traces", phoenix.http_endpoint()) (OTLP/HTTP, protobuf only),
//! // with the resource attribute `openinference.project.name` = a project of your own
//! let spans = phoenix.wait_for_spans("my-project", 2, Duration::from_secs(30));
//! ```
//!
//! Phoenix is installed by `scripts/install-phoenix.sh` (into `<repo>/.phoenix-venv`); the
//! executable is `$SPANLAB_PHOENIX`, else `<repo>/.phoenix-venv/bin/phoenix`. Without
//! either the tests panic: they never skip.
//!
//! Each server gets two free high ports: HTTP (the REST API, and OTLP/HTTP at
//! `/v1/traces`) bound to 127.0.0.1, and OTLP/gRPC, which Phoenix binds on all
//! interfaces. Its output goes to a log file whose tail is in every panic message here.
//! Spans are read back through the REST API, `GET /v1/projects/{project}/spans`: one
//! JSON object per span, with `name`, `context.trace_id` / `context.span_id` (hex),
//! `parent_id`, `start_time` / `end_time` (RFC 3339), `status_code` / `status_message`,
//! `span_kind`, `attributes` (a flat object keyed by the dotted attribute names, JSON
//! typed) and `events` (`name`, `timestamp`, `attributes`).
//!
//! The server is killed when the `Phoenix` drops, or, for one in a `static` such as
//! [`shared`]'s (which never drops), by a watchdog `sh` that kills it, and removes its
//! directory, when the test process exits, however it exits.
#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a server may take to answer its health check: 15-20 s alone on 2 cores,
/// 45 s beside a build or another Phoenix starting.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How `spawn_and_wait`'s error starts when a port was taken.
const ADDRESS_IN_USE: &str = "address already in use: ";
/// The REST API's largest page.
const PAGE: usize = 1000;

/// A running Phoenix server, on two ports of its own.
pub struct Phoenix {
    exe: PathBuf,
    http_port: u16,
    grpc_port: u16,
    /// Phoenix's working directory (`PHOENIX_WORKING_DIR`), and its logs.
    dir: tempfile::TempDir,
    /// The log of the current (or last) server.
    log: PathBuf,
    /// How many servers have been started on these ports (the logs are numbered).
    starts: u32,
    child: Option<Child>,
    watchdog: Option<(Child, ChildStdin)>,
}

/// One Phoenix shared by all the tests of a test binary, started by the first to ask.
/// When it fails to start, every caller panics with the first's message (without trying
/// again).
///
/// It is never dropped: the watchdog ends it when the test process exits.
pub fn shared() -> &'static Phoenix {
    static SHARED: OnceLock<Result<Phoenix, String>> = OnceLock::new();
    super::once_per_binary(&SHARED, "the shared Phoenix did not start", Phoenix::start)
}

impl Phoenix {
    /// Starts a fresh server (empty in-memory database) on two free high ports of
    /// 127.0.0.1 and waits until it answers, panicking with its log tail if it does not
    /// within 120 s. Retries with new ports when the chosen ones were taken meanwhile.
    pub fn start() -> Phoenix {
        let exe = executable();
        let mut tries = 0;
        loop {
            tries += 1;
            let dir = tempfile::Builder::new()
                .prefix("phoenix-")
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .expect("a temporary directory for Phoenix");
            let http_port = free_port(None);
            let grpc_port = free_port(Some(http_port));
            let mut phoenix = Phoenix {
                exe: exe.clone(),
                http_port,
                grpc_port,
                dir,
                log: PathBuf::new(),
                starts: 0,
                child: None,
                watchdog: None,
            };
            match phoenix.spawn_and_wait() {
                Ok(()) => return phoenix,
                Err(why) if tries < 3 && why.starts_with(ADDRESS_IN_USE) => continue,
                Err(why) => panic!("{why}"),
            }
        }
    }

    /// Starts a new server on the same two ports (after [`kill`](Self::kill); kills the
    /// running one first otherwise) and waits until it answers. Its database is new:
    /// the spans the old server received are gone.
    pub fn restart_same_ports(&mut self) {
        self.kill();
        if let Err(why) = self.spawn_and_wait() {
            panic!("{why}");
        }
    }

    /// Kills the server (SIGKILL) and waits for it to exit; a no-op when none runs.
    pub fn kill(&mut self) {
        // The watchdog first: once the server is reaped its PID may be reused.
        if let Some((mut watchdog, stdin)) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
            drop(stdin);
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            child.wait().expect("waiting for the killed Phoenix");
        }
    }

    /// The OTLP/gRPC endpoint, `http://127.0.0.1:PORT`.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// The HTTP base URL, `http://127.0.0.1:PORT`: OTLP/HTTP traces (protobuf; JSON is
    /// refused with 415) go to `{base}/v1/traces`, the REST API is under `{base}/v1`.
    pub fn http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn grpc_port(&self) -> u16 {
        self.grpc_port
    }

    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The PID of the running server, if one runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The current server's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last lines of the current server's log.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// Every span of `project`, in the order Phoenix received them, reading all the pages
    /// of `GET /v1/projects/{project}/spans`. Empty when the project does not exist yet
    /// (Phoenix creates it with its first span).
    pub fn spans(&self, project: &str) -> Vec<serde_json::Value> {
        self.spans_paged(project, PAGE)
    }

    /// [`spans`](Self::spans), `page_size` spans per request (1 to 1000).
    pub fn spans_paged(&self, project: &str, page_size: usize) -> Vec<serde_json::Value> {
        self.read_spans(project, page_size, &[])
    }

    /// The spans of `project` that match the REST API's filters, every page: `filters`
    /// are query parameters such as `("name", "after")`, `("trace_id", hex)`,
    /// `("parent_id", hex)` or `("status_code", "ERROR")` (a parameter given twice
    /// matches either value).
    pub fn spans_where(&self, project: &str, filters: &[(&str, &str)]) -> Vec<serde_json::Value> {
        self.read_spans(project, PAGE, filters)
    }

    fn read_spans(
        &self,
        project: &str,
        page_size: usize,
        filters: &[(&str, &str)],
    ) -> Vec<serde_json::Value> {
        let mut spans = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!(
                "/v1/projects/{}/spans?sort=id&order=asc&limit={page_size}",
                percent_encode(project)
            );
            for (key, value) in filters {
                path.push_str(&format!(
                    "&{}={}",
                    percent_encode(key),
                    percent_encode(value)
                ));
            }
            if let Some(cursor) = &cursor {
                path.push_str("&cursor=");
                path.push_str(&percent_encode(cursor));
            }
            let (status, body) = self.get(&path);
            match status {
                200 => {}
                404 if cursor.is_none() => return spans,
                _ => panic!(
                    "GET {path}: HTTP {status}: {body}\nPhoenix log:\n{}",
                    self.log_tail()
                ),
            }
            let mut page: serde_json::Value =
                serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"));
            match page["data"].take() {
                serde_json::Value::Array(data) => spans.extend(data),
                other => panic!("GET {path}: `data` is not an array: {other}"),
            }
            match page["next_cursor"].take() {
                serde_json::Value::String(next) => cursor = Some(next),
                serde_json::Value::Null => return spans,
                other => panic!("GET {path}: `next_cursor` is {other}"),
            }
        }
    }

    /// Polls [`spans`](Self::spans) until `project` has at least `n` spans and returns
    /// them all; panics, with what it has and the log tail, after `timeout`.
    pub fn wait_for_spans(
        &self,
        project: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.spans(project);
            if spans.len() >= n {
                return spans;
            }
            if Instant::now() >= deadline {
                panic!(
                    "Phoenix project {project:?} has {} spans after {timeout:?}, \
                     waiting for {n}: {}\nPhoenix log:\n{}",
                    spans.len(),
                    serde_json::Value::Array(spans),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `GET path` on the HTTP port: the status and the body.
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.http_port, path).unwrap_or_else(|e| {
            panic!(
                "GET http://127.0.0.1:{}{path}: {e}\nPhoenix log:\n{}",
                self.http_port,
                self.log_tail()
            )
        })
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        self.starts += 1;
        self.log = self.dir.path().join(format!("phoenix.{}.log", self.starts));
        let log = std::fs::File::create(&self.log).expect("Phoenix's log file");
        let mut cmd = Command::new(&self.exe);
        cmd.arg("serve")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("Phoenix's log file"))
            .stderr(log);
        // Nothing of the caller's Phoenix or OpenTelemetry configuration.
        for (key, _) in std::env::vars_os() {
            let key_str = key.to_string_lossy();
            if key_str.starts_with("PHOENIX_") || key_str.starts_with("OTEL_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env("PHOENIX_HOST", "127.0.0.1")
            .env("PHOENIX_PORT", self.http_port.to_string())
            .env("PHOENIX_GRPC_PORT", self.grpc_port.to_string())
            .env("PHOENIX_WORKING_DIR", self.dir.path())
            .env("PHOENIX_SQL_DATABASE_URL", "sqlite:///:memory:")
            .env("PHOENIX_TELEMETRY_ENABLED", "false")
            .env("PHOENIX_ALLOW_EXTERNAL_RESOURCES", "false")
            .env("PHOENIX_DISABLE_AGENT_ASSISTANT", "true")
            .env("PHOENIX_AGENTS_DISABLE_BASH", "true")
            .env("PYTHONUNBUFFERED", "1");
        let started = Instant::now();
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {} serve: {e}", self.exe.display()));
        self.watchdog = Some(watchdog(child.id(), self.dir.path()));
        self.child = Some(child);
        let deadline = started + READY_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("the child just spawned");
            if let Some(status) = child.try_wait().expect("polling Phoenix") {
                let tail = self.log_tail();
                self.kill();
                let why = if ["Errno 98", "address already in use", "Failed to bind"]
                    .iter()
                    .any(|sign| tail.contains(sign))
                {
                    ADDRESS_IN_USE
                } else {
                    ""
                };
                return Err(format!(
                    "{why}Phoenix ({} serve, HTTP port {}, gRPC port {}) exited with {status} \
                     before it was ready; log {}:\n{tail}",
                    self.exe.display(),
                    self.http_port,
                    self.grpc_port,
                    self.log.display()
                ));
            }
            if self.is_ready() {
                eprintln!(
                    "Phoenix ready in {:.1?} (HTTP port {}, gRPC port {}, log {})",
                    started.elapsed(),
                    self.http_port,
                    self.grpc_port,
                    self.log.display()
                );
                return Ok(());
            }
            if Instant::now() >= deadline {
                let tail = self.log_tail();
                self.kill();
                return Err(format!(
                    "Phoenix ({} serve, HTTP port {}, gRPC port {}) not ready after {:?}; \
                     log {}:\n{tail}",
                    self.exe.display(),
                    self.http_port,
                    self.grpc_port,
                    READY_TIMEOUT,
                    self.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The health check answers 200 and the gRPC port accepts connections.
    fn is_ready(&self) -> bool {
        matches!(http_get(self.http_port, "/healthz"), Ok((200, _)))
            && TcpStream::connect_timeout(
                &SocketAddr::from((Ipv4Addr::LOCALHOST, self.grpc_port)),
                Duration::from_secs(1),
            )
            .is_ok()
    }
}

impl Drop for Phoenix {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `$SPANLAB_PHOENIX`, else `<workspace>/.phoenix-venv/bin/phoenix`.
fn executable() -> PathBuf {
    if let Some(exe) = std::env::var_os("SPANLAB_PHOENIX").filter(|s| !s.is_empty()) {
        let exe = PathBuf::from(exe);
        assert!(
            exe.is_file(),
            "SPANLAB_PHOENIX={} is not a file: run `bash scripts/install-phoenix.sh` \
             (it prints the path to set)",
            exe.display()
        );
        return exe;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the integration tests are in the workspace");
    let exe = workspace.join(".phoenix-venv/bin/phoenix");
    assert!(
        exe.is_file(),
        "no Phoenix to run the OTLP end-to-end tests against: neither $SPANLAB_PHOENIX nor {} \
         exists. Run `bash scripts/install-phoenix.sh` (it installs Phoenix into \
         .phoenix-venv; about 2 minutes and 900 MB)",
        exe.display()
    );
    exe
}

/// A port in 20000..32000 (under Linux's ephemeral range, so no outgoing connection
/// takes it meanwhile) that is free on 127.0.0.1 and on all interfaces, IPv4 and IPv6.
fn free_port(other_than: Option<u16>) -> u16 {
    let random = RandomState::new();
    for _ in 0..1000 {
        let mut hasher = random.build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        hasher.write_u32(std::process::id());
        let port = 20000 + (hasher.finish() % 12000) as u16;
        if Some(port) == other_than {
            continue;
        }
        let free = |addr: SocketAddr| match TcpListener::bind(addr) {
            Ok(_) => true,
            // No IPv6 here: only IPv4 matters.
            Err(e) if addr.is_ipv6() && e.kind() == ErrorKind::AddrNotAvailable => true,
            Err(_) => false,
        };
        if free((Ipv4Addr::LOCALHOST, port).into())
            && free((Ipv4Addr::UNSPECIFIED, port).into())
            && free((Ipv6Addr::UNSPECIFIED, port).into())
        {
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

/// A process that kills `pid` and removes `dir` when its stdin closes, which it does when
/// the test process exits, however it exits: the write end is ours alone (Rust opens
/// pipes close-on-exec). [`Phoenix::kill`] kills it first.
fn watchdog(pid: u32, dir: &Path) -> (Child, ChildStdin) {
    const SCRIPT: &str = r#"read -r _
kill -9 "$1" 2>/dev/null
i=0
while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
rm -rf "$2""#;
    let mut child = Command::new("sh")
        .args(["-c", SCRIPT, "phoenix-watchdog"])
        .arg(pid.to_string())
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning sh, Phoenix's watchdog");
    let stdin = child.stdin.take().expect("the watchdog's stdin");
    (child, stdin)
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_else(|e| format!("({}: {e})", log.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A minimal HTTP/1.1 GET to 127.0.0.1 (`Connection: close`; plain or chunked body).
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let invalid = |what: &str| std::io::Error::new(ErrorKind::InvalidData, what.to_string());
    let mut stream = TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_secs(2),
    )?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n\
         Connection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of headers"))?;
    let head = std::str::from_utf8(&response[..split]).map_err(|_| invalid("non-UTF-8 head"))?;
    let mut body = response[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let chunked = lines.any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    if chunked {
        body = dechunk(&body).ok_or_else(|| invalid("bad chunked body"))?;
    }
    let body = String::from_utf8(body).map_err(|_| invalid("non-UTF-8 body"))?;
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&data[..eol]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// The span named `name` among `spans`; panics unless there is exactly one.
pub fn span_named<'a>(spans: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    let mut matching = spans.iter().filter(|s| s["name"] == name);
    match (matching.next(), matching.next()) {
        (Some(span), None) => span,
        _ => panic!(
            "not exactly one span named {name:?} among {}",
            serde_json::Value::Array(spans.to_vec())
        ),
    }
}
