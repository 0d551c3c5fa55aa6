//! Each library's replica on its own, without the simulator: a write pushed
//! to a peer (automerge: sent at the next anti-entropy round, it pushes
//! nothing) is read there once the peer has flushed what it deferred (loro),
//! anti-entropy repairs a lost push, and a restart from the saved chunks
//! keeps what was saved.

use ladon_checker::history::{Key, KeyKind, Mop, ReadValue};

use super::{AutomergeDoc, LoroDoc, Replica, Saved, YrsDoc};

fn read(r: &mut impl Replica, key: i64) -> ReadValue {
    match r
        .transact(vec![Mop::Read(Key::Int(key), ReadValue::Null)], 0)
        .unwrap()[0]
    {
        Mop::Read(_, ref v) => v.clone(),
        _ => unreachable!(),
    }
}

/// Delivers `w` from `a` (node `ai`) to `b` (node `bi`), then every answer
/// back and forth until both are quiet, then flushes both (the start of the
/// next anti-entropy round: loro imports what it received then).
fn deliver<R: Replica>(a: &mut R, ai: usize, b: &mut R, bi: usize, w: super::Wire) {
    let mut inbox = vec![(false, w)];
    while let Some((to_a, w)) = inbox.pop() {
        let mut replies = Vec::new();
        if to_a {
            a.receive(bi, &w, &mut replies).unwrap();
        } else {
            b.receive(ai, &w, &mut replies).unwrap();
        }
        inbox.extend(replies.into_iter().map(|r| (!to_a, r)));
    }
    a.flush().unwrap();
    b.flush().unwrap();
}

/// What `r` sends `peer` after a local commit: its push, or the next
/// anti-entropy round's message for a library that does not push.
fn send<R: Replica>(r: &mut R, peer: usize) -> super::Wire {
    r.push(peer)
        .or_else(|| r.tick(peer))
        .expect("a local commit is sent")
}

fn push_and_repair<R: Replica>(kind: KeyKind, write: impl Fn(i64) -> Mop, expect: ReadValue) {
    let mut a = R::open(1, 2, kind, &[]).unwrap();
    let mut b = R::open(2, 2, kind, &[]).unwrap();
    a.transact(vec![write(1)], 1_000_000_000).unwrap();
    let w = send(&mut a, 1);
    deliver(&mut a, 0, &mut b, 1, w);
    // The second push is lost; the next anti-entropy round repairs it.
    a.transact(vec![write(2)], 2_000_000_000).unwrap();
    let _lost = a.push(1);
    let w = a.tick(1).expect("anti-entropy message");
    deliver(&mut a, 0, &mut b, 1, w);
    assert_eq!(read(&mut b, 7), expect, "{}: b after repair", R::NAME);
    assert_eq!(read(&mut a, 7), expect, "{}: a", R::NAME);

    // Saved chunks restore the document under a new actor id.
    let saved: Saved = a.save_incremental().expect("unsaved changes").into();
    assert!(a.save_incremental().is_none(), "nothing new to save");
    let mut a2 = R::open(3, 2, kind, &[saved]).unwrap();
    assert_eq!(read(&mut a2, 7), expect, "{}: restarted from save", R::NAME);
    a2.transact(vec![write(3)], 3_000_000_000).unwrap();
    assert_ne!(
        read(&mut a2, 7),
        expect,
        "{}: restarted node writes",
        R::NAME
    );
}

fn all_kinds<R: Replica>() {
    let k = || Key::Int(7);
    push_and_repair::<R>(
        KeyKind::List,
        |v| Mop::Append(k(), v),
        ReadValue::List(vec![1, 2]),
    );
    push_and_repair::<R>(
        KeyKind::Set,
        |v| Mop::Add(k(), v),
        ReadValue::List(vec![1, 2]),
    );
    push_and_repair::<R>(KeyKind::Counter, |v| Mop::Incr(k(), v), ReadValue::Int(3));
    push_and_repair::<R>(KeyKind::Register, |v| Mop::Write(k(), v), ReadValue::Int(2));
}

#[test]
fn automerge_pushes_repairs_and_restarts() {
    all_kinds::<AutomergeDoc>();
}

#[test]
fn yrs_pushes_repairs_and_restarts() {
    all_kinds::<YrsDoc>();
}

#[test]
fn loro_pushes_repairs_and_restarts() {
    all_kinds::<LoroDoc>();
}

/// Automerge keeps concurrent register writes as a conflict: read as siblings.
#[test]
fn automerge_concurrent_register_writes_read_as_siblings() {
    let kind = KeyKind::Register;
    let mut a = AutomergeDoc::open(1, 2, kind, &[]).unwrap();
    let mut b = AutomergeDoc::open(2, 2, kind, &[]).unwrap();
    a.transact(vec![Mop::Write(Key::Int(7), 10)], 0).unwrap();
    b.transact(vec![Mop::Write(Key::Int(7), 20)], 0).unwrap();
    let w = send(&mut a, 1);
    deliver(&mut a, 0, &mut b, 1, w);
    assert_eq!(read(&mut a, 7), ReadValue::List(vec![10, 20]));
    assert_eq!(read(&mut b, 7), ReadValue::List(vec![10, 20]));
}
