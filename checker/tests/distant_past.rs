//! Happens-before is exact however far back a dependency lies (issue 11):
//! process 0 appends `x 1`, runs N read-only transactions, then appends
//! `y 2`; both nodes' finals show `x []` and `y [2]`. Each final read
//! observed `y 2`, so `x 1` is in its causal past, N + 1 session edges back:
//! `causal-visibility` on both final reads, whatever N. The checker once
//! gave up its search after a million vertices and called the history
//! valid; the search now has no budget (it moves from a hash set to a bit
//! set past `SMALL_SEARCH` vertices), so an N a few times that threshold
//! exercises the same path as a million in a fraction of the time.

use ladon_checker::causality::SMALL_SEARCH;
use ladon_checker::reader::read_history;
use ladon_checker::{check_history, Anomaly, CheckOptions, Guarantee, Verdict};

fn history(n: usize) -> Vec<u8> {
    let mut out = String::new();
    let mut index = 0u64;
    let mut line = |out: &mut String, rest: &str| {
        out.push_str(&format!(
            "{{\"index\":{index},\"time\":{},{rest}}}\n",
            (index + 1) * 1000
        ));
        index += 1;
    };
    let txn = |out: &mut String,
               line: &mut dyn FnMut(&mut String, &str),
               p: u32,
               node: &str,
               f: &str,
               inv: &str,
               ok: &str| {
        line(
            out,
            &format!("\"type\":\"invoke\",\"process\":{p},\"node\":\"{node}\",\"f\":\"{f}\",\"value\":{inv}"),
        );
        line(
            out,
            &format!(
                "\"type\":\"ok\",\"process\":{p},\"node\":\"{node}\",\"f\":\"{f}\",\"value\":{ok}"
            ),
        );
    };
    txn(
        &mut out,
        &mut line,
        0,
        "n1",
        "txn",
        r#"[["append","x",1]]"#,
        r#"[["append","x",1]]"#,
    );
    for _ in 0..n {
        txn(
            &mut out,
            &mut line,
            0,
            "n1",
            "txn",
            r#"[["r","z",null]]"#,
            r#"[["r","z",null]]"#,
        );
    }
    txn(
        &mut out,
        &mut line,
        0,
        "n1",
        "txn",
        r#"[["append","y",2]]"#,
        r#"[["append","y",2]]"#,
    );
    for (p, node) in [(1, "n1"), (2, "n2")] {
        txn(
            &mut out,
            &mut line,
            p,
            node,
            "final",
            r#"[["r","x",null],["r","y",null]]"#,
            r#"[["r","x",[]],["r","y",[2]]]"#,
        );
    }
    out.into_bytes()
}

fn causal_visibility(n: usize) -> (Verdict, u64) {
    let bytes = history(n);
    let h = read_history(&bytes[..]).map_err(|_| "invalid").unwrap();
    let opts = CheckOptions {
        guarantees: vec![Guarantee::Causal],
        ..CheckOptions::default()
    };
    let report = check_history(&h, &opts);
    let count = report
        .anomalies
        .get(&Anomaly::CausalVisibility)
        .map_or(0, |f| f.count);
    (report.verdict, count)
}

#[test]
fn a_short_way_back() {
    assert_eq!(causal_visibility(10), (Verdict::Invalid, 2));
}

#[test]
fn past_the_small_search() {
    // Well past the hash-set phase of the search, and past it twice over
    // for the second final read (answered from the first's ancestors).
    assert_eq!(
        causal_visibility(2 * SMALL_SEARCH + 10),
        (Verdict::Invalid, 2)
    );
}
