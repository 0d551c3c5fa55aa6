//! What can go wrong driving a database's nodes (its own module, so that
//! the modules `db` itself uses can name it without importing `db`).

use std::path::PathBuf;

/// What can go wrong driving a database's nodes. Every message names the
/// node, the command or the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A binary the system needs is missing; carries the install command.
    #[error("{what} not found ({path}); install it with: {install}")]
    Missing {
        what: String,
        path: String,
        install: String,
    },
    /// A command exited unsuccessfully.
    #[error("{node}: `{command}` failed: {output}")]
    Command {
        node: String,
        command: String,
        output: String,
    },
    /// A node did not become ready in time.
    #[error("{node}: not ready after {secs} s; its log is {log}")]
    NotReady {
        node: String,
        secs: u64,
        log: PathBuf,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

impl DbError {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> DbError {
        let context = context.into();
        move |source| DbError::Io { context, source }
    }
}
