//! Clock skew for child processes through libfaketime: the library is
//! preloaded into the node (`LD_PRELOAD`) and reads its offset from a
//! per-node timestamp file, which the nemesis rewrites while the node runs.
//! With `FAKETIME_NO_CACHE=1` every clock call rereads the file, so a new
//! offset takes effect at once.
//!
//! Limits: statically linked binaries, and runtimes that read the clock
//! without libc (Go reads it through the vDSO directly), ignore
//! `LD_PRELOAD` and keep true time. libfaketime also shifts monotonic
//! clocks by the same offset.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::host::Host;

/// Where Debian's `libfaketime` package installs the library.
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Clock control for one node.
#[derive(Debug, Clone)]
pub struct Faketime {
    /// The library, as a path on the node's host.
    pub library: PathBuf,
    /// The offset file, as a path on the node's host.
    pub timestamp_file: PathBuf,
    /// The node's host when it is another machine (`--hosts`): the file is
    /// written there.
    pub host: Option<Arc<dyn Host>>,
}

/// `library`, or [`LIBFAKETIME`] when none is given.
fn library_or_default(library: Option<&Path>) -> PathBuf {
    library.map_or_else(|| PathBuf::from(LIBFAKETIME), Path::to_path_buf)
}

impl Faketime {
    /// Uses `library` (or [`LIBFAKETIME`]) and a timestamp file at `file`,
    /// initialised to no offset. Fails if the library is missing.
    pub fn new(library: Option<&Path>, file: PathBuf) -> io::Result<Faketime> {
        let library = library_or_default(library);
        if !library.exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "libfaketime not found at {} (install it with `apt-get install -y faketime libfaketime`, or run without clock faults)",
                    library.display()
                ),
            ));
        }
        let ft = Faketime {
            library,
            timestamp_file: file,
            host: None,
        };
        ft.set_offset_ns(0)?;
        Ok(ft)
    }

    /// Clock control for a node on `host`: `library` and `file` are paths
    /// there. Fails if the library is missing on the host.
    pub fn remote(
        host: Arc<dyn Host>,
        library: Option<&Path>,
        file: String,
    ) -> io::Result<Faketime> {
        let library = library_or_default(library);
        let lib = library.display().to_string();
        let out = host.run(&format!("test -e {}", crate::host::sh_quote(&lib)))?;
        if !out.status.success() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{}: libfaketime not found at {lib} (install faketime and libfaketime there, or run without clock faults)",
                    host.name()
                ),
            ));
        }
        let ft = Faketime {
            library,
            timestamp_file: PathBuf::from(file),
            host: Some(host),
        };
        ft.set_offset_ns(0)?;
        Ok(ft)
    }

    /// Environment variables the child needs.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".into(), self.library.display().to_string()),
            (
                "FAKETIME_TIMESTAMP_FILE".into(),
                self.timestamp_file.display().to_string(),
            ),
            ("FAKETIME_NO_CACHE".into(), "1".into()),
        ]
    }

    /// Sets the node's clock to true time plus `offset_ns` (may be negative).
    /// Written to a temporary file and renamed, so the node never reads a
    /// half-written offset.
    pub fn set_offset_ns(&self, offset_ns: i64) -> io::Result<()> {
        if let Some(host) = &self.host {
            let file = self.timestamp_file.display().to_string();
            return host.write_file(&file, offset_spec(offset_ns).as_bytes());
        }
        let tmp = self.timestamp_file.with_extension("tmp");
        std::fs::write(&tmp, offset_spec(offset_ns))?;
        std::fs::rename(&tmp, &self.timestamp_file)
    }
}

/// libfaketime's relative offset syntax: `+1.500000000s`, `-0.250000000s`.
pub fn offset_spec(offset_ns: i64) -> String {
    let sign = if offset_ns < 0 { '-' } else { '+' };
    let abs = offset_ns.unsigned_abs();
    format!(
        "{sign}{}.{:09}s\n",
        abs / 1_000_000_000,
        abs % 1_000_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_use_libfaketime_syntax() {
        assert_eq!(offset_spec(0), "+0.000000000s\n");
        assert_eq!(offset_spec(1_500_000_000), "+1.500000000s\n");
        assert_eq!(offset_spec(-2_000_000_001), "-2.000000001s\n");
    }
}
