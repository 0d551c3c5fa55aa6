//! Reading and rewriting a history keeps every field, known or not.

use std::io::BufReader;

use ladon_checker::reader::EventReader;
use ladon_checker::writer::HistoryWriter;

#[test]
fn unknown_fields_survive_read_then_write() {
    let input = concat!(
        r#"{"index":0,"time":5,"type":"invoke","process":3,"node":"n2","f":"txn","value":[["w","k",1],["r",7,null]],"trace_id":"abc","extra":{"nested":[1,2]}}"#,
        "\n",
        r#"{"index":1,"time":9,"type":"ok","process":3,"node":"n2","f":"txn","value":[["w","k",1],["r",7,[4,5]]],"meta":{"ts":17,"vv":{"n2":3}},"error":null,"z":true}"#,
        "\n",
        r#"{"index":2,"time":9,"type":"info","process":"nemesis","f":"clock-skew","value":{"n1":-2000000000},"source":"ntp"}"#,
        "\n",
    );
    let mut reader = EventReader::new(BufReader::new(input.as_bytes()));
    let mut out = HistoryWriter::buffered(Vec::new());
    while let Some((_, ev)) = reader.next_event().expect("valid lines") {
        out.write(&ev).unwrap();
    }
    let written = String::from_utf8(out.into_inner()).unwrap();
    for (a, b) in input.lines().zip(written.lines()) {
        let a: serde_json::Value = serde_json::from_str(a).unwrap();
        let mut a = a;
        // `"error": null` is the same as no error: the writer omits it.
        if a["error"].is_null() {
            a.as_object_mut().unwrap().remove("error");
        }
        let b: serde_json::Value = serde_json::from_str(b).unwrap();
        assert_eq!(a, b);
    }
    assert_eq!(written.lines().count(), 3);
}

#[test]
fn value_before_process_still_parses() {
    let line = r#"{"value":[["append","x",1]],"index":0,"time":1,"type":"invoke","process":0,"node":"n1","f":"txn"}"#;
    let ev: ladon_checker::Event = serde_json::from_str(line).unwrap();
    assert_eq!(ev.ops(), &[ladon_checker::Mop::Append("x".into(), 1)]);
}

#[test]
fn duplicate_fields_are_rejected() {
    let line = r#"{"index":0,"index":1,"time":1,"type":"invoke","process":0,"node":"n1","f":"txn","value":[]}"#;
    let err = serde_json::from_str::<ladon_checker::Event>(line).unwrap_err();
    assert!(err.to_string().contains("duplicate field `index`"), "{err}");
}
