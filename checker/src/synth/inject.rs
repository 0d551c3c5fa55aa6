//! Injecting exactly one anomaly: a short scenario on fresh processes and
//! fresh (string) keys, run after the main phase, plus what the final reads
//! of its keys show. Each scenario produces its anomaly once and nothing else
//! a checker should report.

use std::io::{self, Write};

use super::{Out, Workload};
use crate::history::{Key, KeyKind, Mop, ReadValue};
use crate::report::Anomaly;

pub struct Ctx<'a, W: Write> {
    pub out: &'a mut Out<W>,
    pub time: u64,
    pub next_pid: &'a mut u64,
    pub next_val: &'a mut i64,
    pub workload: Workload,
    pub nodes: u16,
}

/// What the final reads show for the scenario's keys, per node.
#[derive(Default)]
pub struct Scenario {
    pub finals: Vec<(Key, Vec<ReadValue>)>,
}

/// The anomalies `gen-history --inject` supports: all of them.
pub const INJECTABLE: [Anomaly; 16] = Anomaly::ALL;

const STEP: u64 = 100_000;

impl<W: Write> Ctx<'_, W> {
    fn pid(&mut self) -> u64 {
        let p = *self.next_pid;
        *self.next_pid += 1;
        p
    }
    fn val(&mut self) -> i64 {
        let v = *self.next_val;
        *self.next_val += 1;
        v
    }
    fn node(&self, i: u16) -> u16 {
        i % self.nodes
    }
    fn invoke(&mut self, pid: u64, node: u16, mops: &[Mop]) -> io::Result<()> {
        self.time += STEP;
        self.out
            .client(self.time, "invoke", pid, node, "txn", mops, None)
    }
    fn complete(
        &mut self,
        ty: &str,
        pid: u64,
        node: u16,
        mops: &[Mop],
        ts: Option<i64>,
    ) -> io::Result<()> {
        self.time += STEP;
        self.out.client(self.time, ty, pid, node, "txn", mops, ts)
    }
    /// An invoke immediately followed by its completion.
    fn op(
        &mut self,
        ty: &str,
        pid: u64,
        node: u16,
        mops: &[Mop],
        ts: Option<i64>,
    ) -> io::Result<()> {
        self.invoke(pid, node, mops)?;
        self.complete(ty, pid, node, mops, ts)
    }
    fn all(&self, v: ReadValue) -> Vec<ReadValue> {
        vec![v; self.nodes as usize]
    }
}

fn write(kind: KeyKind, k: &Key, v: i64) -> Mop {
    match kind {
        KeyKind::Register => Mop::Write(k.clone(), v),
        KeyKind::List => Mop::Append(k.clone(), v),
        KeyKind::Set => Mop::Add(k.clone(), v),
        KeyKind::Counter => Mop::Incr(k.clone(), v),
    }
}

fn read(k: &Key, v: ReadValue) -> Mop {
    Mop::Read(k.clone(), v)
}

/// A read's value of the given elements for a key kind.
fn shows(kind: KeyKind, xs: &[i64]) -> ReadValue {
    match kind {
        KeyKind::Register => match xs {
            [] => ReadValue::Null,
            [x] => ReadValue::Int(*x),
            _ => ReadValue::List(xs.to_vec()),
        },
        KeyKind::Counter => ReadValue::Int(xs.iter().sum()),
        _ if xs.is_empty() => ReadValue::Null,
        _ => ReadValue::List(xs.to_vec()),
    }
}

/// The workload's kind where it fits the anomaly, else the one it needs.
fn kind_for(w: Workload, allowed: &[KeyKind]) -> KeyKind {
    if allowed.contains(&w.kind()) {
        w.kind()
    } else {
        allowed[0]
    }
}

pub fn inject<W: Write>(a: Anomaly, c: &mut Ctx<'_, W>) -> io::Result<Scenario> {
    use KeyKind::*;
    let k = Key::Str(format!("inj-{}", a.as_str()));
    let j = Key::Str(format!("inj-{}-dep", a.as_str()));
    let mut s = Scenario::default();
    let (n1, n2, n3) = (c.node(0), c.node(1), c.node(2));
    match a {
        Anomaly::LostWrite => {
            let kind = c.workload.kind();
            let p = c.pid();
            let v = if kind == Counter { 3 } else { c.val() };
            c.op("ok", p, n1, &[write(kind, &k, v)], None)?;
            s.finals.push((k, c.all(shows(kind, &[]))));
        }
        Anomaly::Divergence => {
            if c.nodes < 2 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "injecting divergence needs at least 2 nodes",
                ));
            }
            let kind = c.workload.kind();
            let p = c.pid();
            let v = if kind == Counter { 5 } else { c.val() };
            c.op("info", p, n1, &[write(kind, &k, v)], None)?;
            let mut per = c.all(shows(kind, &[]));
            per[n1 as usize] = shows(kind, &[v]);
            s.finals.push((k, per));
        }
        Anomaly::Nonlinearizable => {
            // A stale read: b overwrote a in real time (and in the final
            // states), yet a later read, by a third client, still returns a.
            // Happens-before orders none of the three writes' clients, so
            // only real time tells.
            let (p1, p2, p3) = (c.pid(), c.pid(), c.pid());
            let (a, b) = (c.val(), c.val());
            c.op("ok", p1, n1, &[write(Register, &k, a)], Some(10))?;
            c.op("ok", p2, n2, &[write(Register, &k, b)], Some(20))?;
            c.op("ok", p3, n3, &[read(&k, ReadValue::Int(a))], None)?;
            s.finals.push((k, c.all(ReadValue::Int(b))));
        }
        Anomaly::ConflictLoss => {
            let (p1, p2) = (c.pid(), c.pid());
            let (a, b) = (c.val(), c.val());
            let (wa, wb) = ([write(Register, &k, a)], [write(Register, &k, b)]);
            c.invoke(p1, n1, &wa)?;
            c.invoke(p2, n2, &wb)?;
            c.complete("ok", p1, n1, &wa, Some(10))?;
            c.complete("ok", p2, n2, &wb, Some(20))?;
            s.finals.push((k, c.all(ReadValue::Int(b))));
        }
        Anomaly::CausalOverwrite => {
            let p = c.pid();
            let (a, b) = (c.val(), c.val());
            c.op("ok", p, n1, &[write(Register, &k, a)], Some(200))?;
            c.op("ok", p, n1, &[write(Register, &k, b)], Some(100))?;
            s.finals.push((k, c.all(ReadValue::Int(a))));
        }
        Anomaly::Duplicate => {
            if c.workload == Workload::Counter {
                let p = c.pid();
                c.op("ok", p, n1, &[write(Counter, &k, 3)], None)?;
                s.finals.push((k, c.all(ReadValue::Int(6))));
            } else {
                let (p1, p2) = (c.pid(), c.pid());
                let a = c.val();
                c.op("ok", p1, n1, &[write(List, &k, a)], None)?;
                c.op("ok", p2, n2, &[read(&k, ReadValue::List(vec![a, a]))], None)?;
                s.finals.push((k, c.all(ReadValue::List(vec![a]))));
            }
        }
        Anomaly::Phantom => {
            let kind = kind_for(c.workload, &[List, Set, Register]);
            let p = c.pid();
            let v = c.val();
            c.op("ok", p, n1, &[read(&k, shows(kind, &[v]))], None)?;
        }
        Anomaly::FailedWriteVisible => {
            let kind = kind_for(c.workload, &[List, Set, Register]);
            let (p1, p2) = (c.pid(), c.pid());
            let a = c.val();
            c.op("fail", p1, n1, &[write(kind, &k, a)], None)?;
            c.op("ok", p2, n2, &[read(&k, shows(kind, &[a]))], None)?;
            s.finals.push((k, c.all(shows(kind, &[]))));
        }
        Anomaly::FutureRead => {
            let kind = kind_for(c.workload, &[List, Set, Register]);
            let (p1, p2) = (c.pid(), c.pid());
            let a = c.val();
            c.op("ok", p1, n1, &[read(&k, shows(kind, &[a]))], None)?;
            c.op("ok", p2, n2, &[write(kind, &k, a)], None)?;
            s.finals.push((k, c.all(shows(kind, &[a]))));
        }
        Anomaly::StaleSibling => {
            let (p1, p2) = (c.pid(), c.pid());
            let (a, b) = (c.val(), c.val());
            c.op("ok", p1, n1, &[write(Register, &k, a)], None)?;
            c.op("ok", p1, n1, &[write(Register, &k, b)], None)?;
            c.op("ok", p2, n2, &[read(&k, ReadValue::List(vec![a, b]))], None)?;
            s.finals.push((k, c.all(ReadValue::Int(b))));
        }
        Anomaly::CausalOrder => {
            let (p1, p2) = (c.pid(), c.pid());
            let (a, b) = (c.val(), c.val());
            c.op("ok", p1, n1, &[write(List, &k, a)], None)?;
            c.op("ok", p1, n1, &[write(List, &k, b)], None)?;
            c.op("ok", p2, n2, &[read(&k, ReadValue::List(vec![b, a]))], None)?;
            s.finals.push((k, c.all(ReadValue::List(vec![a, b]))));
        }
        Anomaly::ReadYourWrites => {
            let kind = kind_for(c.workload, &[List, Set, Register]);
            let p = c.pid();
            let a = c.val();
            c.op("ok", p, n1, &[write(kind, &k, a)], None)?;
            c.op("ok", p, n1, &[read(&k, ReadValue::Null)], None)?;
            s.finals.push((k, c.all(shows(kind, &[a]))));
        }
        Anomaly::MonotonicReads => {
            let kind = kind_for(c.workload, &[List, Set, Register]);
            let (p1, p2) = (c.pid(), c.pid());
            let a = c.val();
            c.op("ok", p1, n1, &[write(kind, &k, a)], None)?;
            c.op("ok", p2, n2, &[read(&k, shows(kind, &[a]))], None)?;
            c.op("ok", p2, n2, &[read(&k, ReadValue::Null)], None)?;
            s.finals.push((k, c.all(shows(kind, &[a]))));
        }
        Anomaly::CausalVisibility => {
            let kind = kind_for(c.workload, &[List, Set, Register]);
            let (p1, p2, p3) = (c.pid(), c.pid(), c.pid());
            let (a, b) = (c.val(), c.val());
            c.op("ok", p1, n1, &[write(kind, &k, a)], None)?;
            c.op("ok", p2, n2, &[read(&k, shows(kind, &[a]))], None)?;
            c.op("ok", p2, n2, &[write(kind, &j, b)], None)?;
            c.op("ok", p3, n3, &[read(&j, shows(kind, &[b]))], None)?;
            c.op("ok", p3, n3, &[read(&k, ReadValue::Null)], None)?;
            s.finals.push((k, c.all(shows(kind, &[a]))));
            s.finals.push((j, c.all(shows(kind, &[b]))));
        }
        Anomaly::CyclicCausality => {
            let (p1, p2) = (c.pid(), c.pid());
            let (a, b) = (c.val(), c.val());
            let t1 = [write(List, &k, a), read(&j, ReadValue::Null)];
            let t2 = [write(List, &j, b), read(&k, ReadValue::Null)];
            c.invoke(p1, n1, &t1)?;
            c.invoke(p2, n2, &t2)?;
            c.complete(
                "ok",
                p1,
                n1,
                &[write(List, &k, a), read(&j, ReadValue::List(vec![b]))],
                None,
            )?;
            c.complete(
                "ok",
                p2,
                n2,
                &[write(List, &j, b), read(&k, ReadValue::List(vec![a]))],
                None,
            )?;
            s.finals.push((k, c.all(ReadValue::List(vec![a]))));
            s.finals.push((j, c.all(ReadValue::List(vec![b]))));
        }
        Anomaly::InvalidHistory => {
            let (p1, p2) = (c.pid(), c.pid());
            let a = c.val();
            c.op("ok", p1, n1, &[write(List, &k, a)], None)?;
            // the same value appended again: breaks "written values are unique per key"
            c.op("ok", p2, n2, &[write(List, &k, a)], None)?;
            s.finals.push((k, c.all(ReadValue::List(vec![a]))));
        }
    }
    Ok(s)
}
