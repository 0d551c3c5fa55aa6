//! Node supervision for a live run: starting each node process (spawn,
//! `init`, workload setup), pumping its stdout to the router and the
//! router's lines to its stdin, and the process faults: `crash` (SIGKILL),
//! `restart` (a fresh process, `init` again), `pause` (SIGSTOP) and
//! `resume` (SIGCONT). A node that exits on its own is noticed and reported.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ladon_adapters::process::child::{describe_exit, ChildSpec, NodeProcess};
use ladon_adapters::process::clock::Faketime;
use ladon_adapters::process::init::{handshake, init_body};
use ladon_adapters::process::lines::{Line as ReadLine, LineReader};
use serde_json::Value as Json;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::process::ChildStdin;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::router::{Control, Lines, RouterIn};

/// Longest line a node may print (longer ones are reported and skipped).
pub const MAX_LINE: usize = 16 << 20;

pub struct NodeSet {
    pub names: Vec<String>,
    specs: Vec<ChildSpec>,
    setup: Vec<Vec<Json>>,
    init_timeout: Duration,
    router: mpsc::Sender<RouterIn>,
    slots: Vec<Slot>,
    /// A node that exits on its own is reported here (node index, status).
    exits: mpsc::UnboundedSender<(usize, u64, String)>,
    /// Every process id started, in order (so callers can verify reaping).
    pub spawned: Vec<i32>,
}

#[derive(Default)]
struct Slot {
    proc: Option<NodeProcess>,
    reader: Option<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
    /// Incremented at every start, so a stale reader's exit report is ignored.
    generation: u64,
    paused: bool,
}

impl NodeSet {
    /// `setup[i]`: extra setup bodies for node `i` after `init` (e.g. `topology`).
    pub fn new(
        specs: Vec<ChildSpec>,
        setup: Vec<Vec<Json>>,
        init_timeout: Duration,
        router: mpsc::Sender<RouterIn>,
        exits: mpsc::UnboundedSender<(usize, u64, String)>,
    ) -> NodeSet {
        let names = specs.iter().map(|s| s.node.clone()).collect();
        let slots = specs.iter().map(|_| Slot::default()).collect();
        NodeSet {
            names,
            specs,
            setup,
            init_timeout,
            router,
            slots,
            exits,
            spawned: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn faketime(&self, i: usize) -> Option<&Faketime> {
        self.specs[i].faketime.as_ref()
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.specs[i].log.clone()
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.slots[i].proc.is_some()
    }

    pub fn is_paused(&self, i: usize) -> bool {
        self.slots[i].paused
    }

    pub fn generation(&self, i: usize) -> u64 {
        self.slots[i].generation
    }

    /// Starts node `i`: spawns it, performs the handshake, connects it to the router.
    pub async fn start(&mut self, i: usize) -> anyhow::Result<()> {
        let spec = &self.specs[i];
        let mut proc = NodeProcess::spawn(spec)?;
        self.spawned.push(proc.pid);
        let mut stdin = proc.stdin.take().expect("piped stdin");
        let mut reader = LineReader::new(proc.stdout.take().expect("piped stdout"), MAX_LINE);
        let mut bodies = vec![init_body(&spec.node, &self.names, 1)];
        for (k, b) in self.setup[i].iter().enumerate() {
            let mut b = b.clone();
            b["msg_id"] = Json::from(k as u64 + 2);
            bodies.push(b);
        }
        let log = spec.log.display().to_string();
        let ignored = match handshake(
            &spec.node,
            &log,
            &mut stdin,
            &mut reader,
            bodies,
            self.init_timeout,
        )
        .await
        {
            Ok(ig) => ig,
            Err(e) => {
                let status =
                    match tokio::time::timeout(Duration::from_millis(200), proc.wait()).await {
                        Ok(Ok(st)) => format!(" (it exited: {})", describe_exit(&st)),
                        _ => String::new(),
                    };
                drop(proc);
                anyhow::bail!("{e}{status}");
            }
        };
        if !ignored.is_empty() {
            append_log(
                &spec.log,
                &format!(
                    "[ladon] {}: ignored during the handshake: {}",
                    spec.node,
                    ignored.join(" | ")
                ),
            );
        }
        let slot = &mut self.slots[i];
        slot.generation += 1;
        slot.paused = false;
        let generation = slot.generation;
        let (tx, rx) = mpsc::unbounded_channel::<Lines>();
        slot.writer = Some(tokio::spawn(pump_stdin(stdin, rx)));
        let router = self.router.clone();
        let exits = self.exits.clone();
        slot.reader = Some(tokio::spawn(async move {
            let why = pump_stdout(i, reader, &router).await;
            let _ = exits.send((i, generation, why));
        }));
        slot.proc = Some(proc);
        self.router
            .send(RouterIn::Control(Control::NodeUp(i, tx)))
            .await?;
        Ok(())
    }

    /// `crash`: disconnect from the router, SIGKILL, reap.
    pub async fn crash(&mut self, i: usize) -> Option<String> {
        let _ = self
            .router
            .send(RouterIn::Control(Control::NodeDown(i)))
            .await;
        let slot = &mut self.slots[i];
        slot.generation += 1; // the reader's EOF is expected now
        slot.paused = false;
        let status = match slot.proc.take() {
            Some(mut p) => p.kill().await.ok().map(|s| describe_exit(&s)),
            None => None,
        };
        for h in [slot.reader.take(), slot.writer.take()]
            .into_iter()
            .flatten()
        {
            h.abort();
        }
        status
    }

    /// The node exited on its own: forget its process (after reaping it).
    pub async fn exited(&mut self, i: usize, generation: u64) -> Option<String> {
        if self.slots[i].generation != generation || self.slots[i].proc.is_none() {
            return None;
        }
        let _ = self
            .router
            .send(RouterIn::Control(Control::NodeDown(i)))
            .await;
        let slot = &mut self.slots[i];
        let mut p = slot.proc.take()?;
        let status = match tokio::time::timeout(Duration::from_secs(2), p.wait()).await {
            Ok(Ok(s)) => describe_exit(&s),
            _ => {
                let _ = p.kill().await;
                "closed stdout; killed".to_string()
            }
        };
        if let Some(w) = slot.writer.take() {
            w.abort();
        }
        Some(status)
    }

    pub fn pause(&mut self, i: usize) -> std::io::Result<()> {
        if let Some(p) = &self.slots[i].proc {
            p.stop()?;
            self.slots[i].paused = true;
        }
        Ok(())
    }

    pub fn resume(&mut self, i: usize) -> std::io::Result<()> {
        if let Some(p) = &self.slots[i].proc {
            p.cont()?;
        }
        self.slots[i].paused = false;
        Ok(())
    }

    /// Stops every node: SIGCONT (a stopped process cannot die cleanly), close
    /// stdin, then SIGKILL and reap.
    pub async fn shutdown(&mut self) {
        for i in 0..self.len() {
            let _ = self.resume(i);
            self.crash(i).await;
        }
    }
}

fn append_log(path: &std::path::Path, line: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

async fn pump_stdin(stdin: ChildStdin, mut rx: mpsc::UnboundedReceiver<Lines>) {
    let mut w = BufWriter::with_capacity(1 << 16, stdin);
    while let Some(lines) = rx.recv().await {
        if write_lines(&mut w, &lines).await.is_err() {
            return;
        }
        // Batch whatever else is queued, then flush once.
        while let Ok(lines) = rx.try_recv() {
            if write_lines(&mut w, &lines).await.is_err() {
                return;
            }
        }
        if w.flush().await.is_err() {
            return;
        }
    }
}

async fn write_lines(w: &mut BufWriter<ChildStdin>, lines: &Lines) -> std::io::Result<()> {
    for line in lines {
        w.write_all(line).await?;
        w.write_all(b"\n").await?;
    }
    Ok(())
}

/// Most lines passed to the router in one batch.
const MAX_BATCH: usize = 256;

/// What the router gets for one item read from stdout (`None`: skip it).
fn routed(item: ReadLine) -> Option<Vec<u8>> {
    match item {
        ReadLine::Line(line) if line.is_empty() => None,
        ReadLine::Line(line) => Some(line),
        ReadLine::TooLong { head, len } => {
            let mut line = b"[over-long line, ".to_vec();
            line.extend_from_slice(format!("{len} bytes without a newline] ").as_bytes());
            line.extend_from_slice(&head);
            Some(line)
        }
    }
}

/// Forwards stdout lines to the router until end of stream; returns why it
/// ended. Every whole line one read returned goes to the router as one batch.
async fn pump_stdout<R>(
    node: usize,
    mut reader: LineReader<R>,
    router: &mpsc::Sender<RouterIn>,
) -> String
where
    R: tokio::io::AsyncRead + Unpin,
{
    loop {
        let first = match reader.next().await {
            Ok(Some(item)) => item,
            Ok(None) => return "closed stdout".into(),
            Err(e) => return format!("stdout read error: {e}"),
        };
        let mut lines: Vec<Vec<u8>> = routed(first).into_iter().collect();
        while lines.len() < MAX_BATCH {
            match reader.next_buffered() {
                Some(item) => lines.extend(routed(item)),
                None => break,
            }
        }
        let msg = match lines.len() {
            0 => continue,
            1 => RouterIn::FromNode {
                node,
                line: lines.pop().expect("one line"),
            },
            _ => RouterIn::FromNodeBatch { node, lines },
        };
        if router.send(msg).await.is_err() {
            return "router stopped".into();
        }
    }
}

/// Shared handle so nemesis and final phase can drive the same nodes.
pub type SharedNodes = Arc<tokio::sync::Mutex<NodeSet>>;
