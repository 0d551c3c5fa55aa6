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

use super::budget::{Budget, MAX_LINE, NODE_BUDGET};
use super::router::{Control, Lines, Payload, RouterIn};

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
    /// Each node's backpressure budget (kept across restarts).
    pub budgets: Vec<Arc<Budget>>,
    /// Processes started ahead of their handshake ([`NodeSet::prestart_remote`]).
    prestarted: Vec<Option<NodeProcess>>,
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
        let n = specs.len();
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
            budgets: (0..n).map(|_| Budget::new(NODE_BUDGET)).collect(),
            prestarted: (0..n).map(|_| None).collect(),
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

    /// Starts node `i`: spawns it, performs the handshake, connects it to
    /// the router. During the handshake the router already knows the node
    /// as starting: what it sends is routed (services answer it), and what
    /// peers send it waits until it answers.
    pub async fn start(&mut self, i: usize) -> anyhow::Result<()> {
        let spec = &self.specs[i];
        let mut proc = match self.prestarted[i].take() {
            Some(p) => p,
            None => NodeProcess::spawn(spec).await?,
        };
        self.spawned.push(proc.pid);
        let stdin = proc.stdin.take().expect("piped stdin");
        let mut reader = LineReader::new(proc.stdout.take().expect("piped stdout"), MAX_LINE);
        let mut bodies = vec![init_body(&spec.node, &self.names, 1)];
        for (k, b) in self.setup[i].iter().enumerate() {
            let mut b = b.clone();
            b["msg_id"] = Json::from(k as u64 + 2);
            bodies.push(b);
        }
        let (tx, rx) = mpsc::unbounded_channel::<Lines>();
        let writer = tokio::spawn(pump_stdin(stdin, rx));
        self.router
            .send(RouterIn::Control(Control::NodeStarting(i, tx.clone())))
            .await?;
        let (early_tx, mut early_rx) = mpsc::channel::<Vec<u8>>(64);
        let relay = {
            let router = self.router.clone();
            tokio::spawn(async move {
                while let Some(line) = early_rx.recv().await {
                    if router
                        .send(RouterIn::FromNode { node: i, line })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            })
        };
        let log = spec.log.display().to_string();
        let result = handshake(
            &spec.node,
            &log,
            &mut ChanWriter::new(tx.clone()),
            &mut reader,
            bodies,
            self.init_timeout,
            &early_tx,
        )
        .await;
        drop(early_tx);
        // Every early message reaches the router before the node is ready.
        let _ = relay.await;
        let ignored = match result {
            Ok(ig) => ig,
            Err(e) => {
                let _ = self
                    .router
                    .send(RouterIn::Control(Control::NodeDown(i)))
                    .await;
                writer.abort();
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
        slot.writer = Some(writer);
        let router = self.router.clone();
        let exits = self.exits.clone();
        let pump = StdoutPump {
            node: i,
            name: spec.node.clone(),
            log: spec.log.clone(),
            budget: self.budgets[i].clone(),
        };
        slot.reader = Some(tokio::spawn(async move {
            let why = pump.run(reader, &router).await;
            let _ = exits.send((i, generation, why));
        }));
        slot.proc = Some(proc);
        self.router
            .send(RouterIn::Control(Control::NodeReady(i)))
            .await?;
        Ok(())
    }

    /// Starts the processes of every node on another machine at once, ahead
    /// of their handshakes ([`NodeSet::start`] takes them): each costs an
    /// SSH session's setup, which then overlap. Local nodes start in
    /// [`NodeSet::start`] as before.
    pub async fn prestart_remote(&mut self) -> anyhow::Result<()> {
        let mut tasks = Vec::new();
        for (i, spec) in self.specs.iter().enumerate() {
            if spec.remote.is_some() && self.prestarted[i].is_none() {
                let spec = spec.clone();
                tasks.push((
                    i,
                    tokio::spawn(async move { NodeProcess::spawn(&spec).await }),
                ));
            }
        }
        let mut first_err = None;
        for (i, t) in tasks {
            match t.await {
                Ok(Ok(p)) => self.prestarted[i] = Some(p),
                Ok(Err(e)) => {
                    first_err.get_or_insert(
                        anyhow::Error::new(e)
                            .context(format!("cannot start node {}", self.names[i])),
                    );
                }
                Err(e) => {
                    first_err.get_or_insert(anyhow::anyhow!("node {}: {e}", self.names[i]));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
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
            // A paused node first gets SIGCONT (a round trip for a node
            // on another machine: skipped when it is not paused).
            if self.slots[i].paused {
                let _ = self.resume(i);
            }
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

/// The handshake's writes, as lines into the node's stdin pump (so the
/// router can write service replies to the same stdin meanwhile).
struct ChanWriter {
    tx: mpsc::UnboundedSender<Lines>,
    buf: Vec<u8>,
}

impl ChanWriter {
    fn new(tx: mpsc::UnboundedSender<Lines>) -> ChanWriter {
        ChanWriter {
            tx,
            buf: Vec::new(),
        }
    }
}

impl tokio::io::AsyncWrite for ChanWriter {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.buf.extend_from_slice(data);
        std::task::Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let mut lines = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            lines.push(Payload::new(
                &line[..line.len() - 1],
                super::budget::Credit::none(),
            ));
        }
        if lines.is_empty() || self.tx.send(lines).is_ok() {
            std::task::Poll::Ready(Ok(()))
        } else {
            std::task::Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()))
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// Forwards one node's stdout to the router, charging every line to the
/// node's budget and pausing while the budget is spent.
struct StdoutPump {
    node: usize,
    name: String,
    log: PathBuf,
    budget: Arc<Budget>,
}

impl StdoutPump {
    /// Forwards stdout lines to the router until end of stream; returns why
    /// it ended. Every whole line one read returned goes to the router as
    /// one batch.
    async fn run<R>(&self, mut reader: LineReader<R>, router: &mpsc::Sender<RouterIn>) -> String
    where
        R: tokio::io::AsyncRead + Unpin,
    {
        loop {
            let first = match reader.next().await {
                Ok(Some(item)) => item,
                Ok(None) => return "closed stdout".into(),
                Err(e) => return format!("stdout read error: {e}"),
            };
            let mut lines: Vec<Vec<u8>> = Vec::new();
            let mut oversize = Vec::new();
            let mut item = Some(first);
            while let Some(it) = item.take() {
                match it {
                    ReadLine::Line(line) if line.is_empty() => {}
                    ReadLine::Line(line) => lines.push(line),
                    ReadLine::TooLong { len, .. } => oversize.push(len),
                }
                if lines.len() < MAX_BATCH {
                    item = reader.next_buffered();
                }
            }
            for len in oversize {
                if router
                    .send(RouterIn::Oversize {
                        node: self.node,
                        len,
                    })
                    .await
                    .is_err()
                {
                    return "router stopped".into();
                }
            }
            if lines.is_empty() {
                continue;
            }
            self.wait_for_room().await;
            let bytes = lines.iter().map(Vec::len).sum();
            let credit = self.budget.charge(bytes);
            let msg = RouterIn::FromNodeCharged {
                node: self.node,
                lines,
                credit,
            };
            if router.send(msg).await.is_err() {
                return "router stopped".into();
            }
        }
    }

    /// Backpressure: while the node's messages fill its budget, stop reading.
    async fn wait_for_room(&self) {
        let first = self.budget.pauses() == 0;
        self.budget
            .room(|| {
                if first {
                    append_log(
                        &self.log,
                        &format!(
                            "[ladon] {}: over {} MiB of its messages are waiting for delivery; \
                             Ladon paused reading its stdout until they drain (backpressure; \
                             later pauses are only counted in the summary)",
                            self.name,
                            self.budget.cap() >> 20
                        ),
                    );
                }
            })
            .await;
    }
}

/// Shared handle so nemesis and final phase can drive the same nodes.
pub type SharedNodes = Arc<tokio::sync::Mutex<NodeSet>>;
