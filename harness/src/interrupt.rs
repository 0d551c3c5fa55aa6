//! SIGINT and SIGTERM during `ladon run`, in every mode: the first asks the
//! run to stop (the faults and the clients stop, the history so far is
//! checked and every file written, the exit code is 2); a second one exits
//! at once (130 for SIGINT, 143 for SIGTERM; a live run's nodes die with
//! Ladon, see `PR_SET_PDEATHSIG` in the process adapter).
//!
//! Only `ladon run` installs the handlers ([`install`]); elsewhere
//! [`requested`] is always `None`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use signal_hook::consts::{SIGINT, SIGTERM};

struct State {
    /// Set by the first signal; a signal that finds it set exits.
    stopping: Arc<AtomicBool>,
    /// The number of the last signal received (0: none).
    signal: Arc<AtomicUsize>,
}

static STATE: OnceLock<State> = OnceLock::new();

/// Installs the handlers (once; later calls do nothing).
pub fn install() -> std::io::Result<()> {
    if STATE.get().is_some() {
        return Ok(());
    }
    let state = State {
        stopping: Arc::new(AtomicBool::new(false)),
        signal: Arc::new(AtomicUsize::new(0)),
    };
    for (sig, status) in [(SIGINT, 130), (SIGTERM, 143)] {
        // In this order: the shutdown looks at the flag before the first
        // signal sets it.
        signal_hook::flag::register_conditional_shutdown(sig, status, state.stopping.clone())?;
        signal_hook::flag::register_usize(sig, state.signal.clone(), sig as usize)?;
        signal_hook::flag::register(sig, state.stopping.clone())?;
    }
    let _ = STATE.set(state);
    Ok(())
}

/// The signal that asked the run to stop, if one did.
pub fn requested() -> Option<&'static str> {
    let s = STATE.get()?;
    if !s.stopping.load(Ordering::Relaxed) {
        return None;
    }
    Some(match s.signal.load(Ordering::Relaxed) as i32 {
        SIGTERM => "SIGTERM",
        _ => "SIGINT",
    })
}

/// Resolves when a stop was requested (polls every 20 ms).
pub async fn wait() -> &'static str {
    loop {
        if let Some(s) = requested() {
            return s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
