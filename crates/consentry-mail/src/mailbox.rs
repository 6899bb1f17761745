//! A real SMTP server on a loopback port for tests and `consentry demo` (mailin-embedded): each
//! message it accepts is written to `<dir>/<n>.eml` (`n` counting from 1), a recipient it is told to
//! refuse gets `550 Mailbox unavailable`, and tests read the messages back. Plain SMTP only, and
//! only on loopback addresses.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mailin_embedded::{Handler, Response, Server, response};

/// Why the mailbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// Only loopback addresses are served.
    #[error("the mailbox listens on loopback addresses only, not {0}")]
    NotLoopback(IpAddr),
    /// The folder or the port.
    #[error("mailbox: {0}")]
    Io(#[from] std::io::Error),
    /// The SMTP server.
    #[error("mailbox SMTP server: {0}")]
    Server(String),
}

#[derive(Debug, Default)]
struct Shared {
    refused: Vec<String>,
    count: u64,
}

#[derive(Debug, Clone)]
struct Receiver {
    dir: PathBuf,
    shared: Arc<Mutex<Shared>>,
    data: Vec<u8>,
}

impl Receiver {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Handler for Receiver {
    fn rcpt(&mut self, to: &str) -> Response {
        let to = to.trim().trim_start_matches('<').trim_end_matches('>');
        if self
            .lock()
            .refused
            .iter()
            .any(|r| r.eq_ignore_ascii_case(to))
        {
            response::NO_MAILBOX
        } else {
            response::OK
        }
    }

    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> Response {
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let data = std::mem::take(&mut self.data);
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let n = shared.count + 1;
        let path = self.dir.join(format!("{n}.eml"));
        // Written beside and renamed, so a reader never sees half a message.
        let tmp = self.dir.join(format!(".{n}.eml.part"));
        let written = std::fs::write(&tmp, &data).and_then(|()| std::fs::rename(&tmp, &path));
        match written {
            Ok(()) => {
                shared.count = n;
                response::OK
            }
            Err(_) => response::INTERNAL_ERROR,
        }
    }
}

/// A running loopback SMTP server writing into a folder. It serves until the process ends.
#[derive(Debug, Clone)]
pub struct Mailbox {
    addr: SocketAddr,
    dir: PathBuf,
    shared: Arc<Mutex<Shared>>,
}

impl Mailbox {
    /// Starts on `127.0.0.1` at a free port, writing into `dir` (created if needed).
    pub fn start(dir: &Path) -> Result<Mailbox, MailboxError> {
        Self::start_on(dir, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Starts on `addr` (a loopback address; port 0 picks a free one), writing into `dir`. The
    /// count goes on from the messages already in the folder.
    pub fn start_on(dir: &Path, addr: SocketAddr) -> Result<Mailbox, MailboxError> {
        if !addr.ip().is_loopback() {
            return Err(MailboxError::NotLoopback(addr.ip()));
        }
        std::fs::create_dir_all(dir)?;
        let count = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".eml")?
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap_or(0);
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared {
            refused: Vec::new(),
            count,
        }));
        let handler = Receiver {
            dir: dir.to_path_buf(),
            shared: shared.clone(),
            data: Vec::new(),
        };
        let mut server = Server::new(handler);
        server
            .with_name("consentry-mailbox.localhost")
            .with_num_threads(2)
            .with_tcp_listener(listener);
        std::thread::Builder::new()
            .name("consentry-mailbox".into())
            .spawn(move || {
                if let Err(e) = server.serve() {
                    tracing::error!(error = %e, "the mailbox SMTP server stopped");
                }
            })?;
        Ok(Mailbox {
            addr,
            dir: dir.to_path_buf(),
            shared,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The folder it writes into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Answers `550 Mailbox unavailable` to `address` from now on.
    pub fn refuse(&self, address: &str) {
        let mut s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        s.refused.push(address.to_string());
    }

    /// The messages received so far, in order, as raw RFC 5322 text.
    pub fn messages(&self) -> Result<Vec<String>, MailboxError> {
        let count = self.shared.lock().unwrap_or_else(|p| p.into_inner()).count;
        (1..=count)
            .filter_map(|n| {
                let p = self.dir.join(format!("{n}.eml"));
                p.exists().then_some(p)
            })
            .map(|p| Ok(String::from_utf8_lossy(&std::fs::read(p)?).into_owned()))
            .collect()
    }
}
