//! The daemon's control socket, `$ROOT/net/linkd.sock`: one JSON request per connection,
//! one JSON answer. `reload` makes the daemon apply `linkd.json` now and answers with the
//! generation in force; `status` answers with every path's live counters.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::pump::DirectionStatus;

pub fn socket_path(state_root: &Path) -> PathBuf {
    state_root.join("net").join("linkd.sock")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "op")]
pub enum Request {
    Status,
    Reload,
}

/// One path as the daemon carries it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PathStatus {
    pub id: String,
    pub ports: [String; 2],
    pub up: bool,
    /// One per direction: ports[0] → ports[1], then back; empty while it cannot run.
    pub directions: Vec<DirectionStatus>,
    /// Why the path does not run (a port is missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The generation of `linkd.json` in force.
    pub generation: u64,
    pub pid: u32,
    pub paths: Vec<PathStatus>,
}

/// Asks the daemon of `state_root`; an error when it does not answer within `timeout`.
pub fn request(state_root: &Path, request: Request, timeout: Duration) -> std::io::Result<Status> {
    let stream = UnixStream::connect(socket_path(state_root))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut line = serde_json::to_string(&request).map_err(std::io::Error::other)?;
    line.push('\n');
    (&stream).write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer)?;
    serde_json::from_str(&answer).map_err(std::io::Error::other)
}

/// The daemon's side: binds the socket (replacing a stale one).
pub fn listen(state_root: &Path) -> std::io::Result<UnixListener> {
    let path = socket_path(state_root);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    UnixListener::bind(&path)
}

/// Reads one request from a connection and writes `answer(request)` back.
pub fn serve_one(
    stream: UnixStream,
    answer: impl FnOnce(Request) -> Status,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let request: Request = serde_json::from_str(line.trim()).map_err(std::io::Error::other)?;
    let mut out = serde_json::to_string(&answer(request)).map_err(std::io::Error::other)?;
    out.push('\n');
    (&stream).write_all(out.as_bytes())
}
