//! The facade against Ladon's own pipeline: a cluster run through
//! `ladon::Test` gives the history the same cluster gives as a built-in
//! adapter of `ladon run`, and the builder's errors name what is wrong.

use std::time::Duration;

use ladon::toy::{ToyBug, ToyCluster};
use ladon::{Fault, Test, Verdict, Workload};
use ladon_harness::options::{AdapterKind, RunOptions};

fn toy_test(bug: Option<ToyBug>) -> Test {
    Test::new(move |n| ToyCluster::new(n, bug))
        .nodes(3)
        .workload(Workload::ListAppend)
        .nemesis([Fault::Partition])
        .time_limit(Duration::from_secs(2))
        .nemesis_interval(Duration::from_millis(500))
}

#[test]
fn a_failing_seed_has_the_history_of_the_built_in_adapter_with_the_same_seed() {
    let store = tempfile::tempdir().unwrap();
    let outcome = toy_test(Some(ToyBug::NoAntiEntropy))
        .store(store.path())
        .seeds(1..9)
        .run();
    let failure = outcome.expect_failure();
    assert_eq!(outcome.test, "toy-cluster-list-append");
    assert!(failure
        .run_dir
        .starts_with(store.path().join("toy-cluster-list-append")));

    // The same seed through `ladon run --adapter toy --bug no-anti-entropy`'s pipeline.
    let mut o = RunOptions {
        adapter: AdapterKind::Toy,
        seed: Some(failure.seed),
        nemesis: "partition".parse().unwrap(),
        time_limit: "2s".parse().unwrap(),
        nemesis_interval: "500ms".parse().unwrap(),
        store: store.path().join("cli"),
        ..RunOptions::default()
    };
    o.adapter_options.bug = Some(ladon_adapters::reference::Bug::NoAntiEntropy);
    let o = ladon_harness::cli::run::resolve(o).unwrap();
    let run = ladon_harness::store::execute(&o, String::new(), true, None).unwrap();
    let cli_history = std::fs::read(run.dir.unwrap().join("history.jsonl")).unwrap();
    let test_history = std::fs::read(failure.run_dir.join("history.jsonl")).unwrap();
    assert!(!test_history.is_empty());
    assert!(cli_history == test_history, "the histories differ");
    assert_eq!(run.report.unwrap().verdict, failure.verdict());
}

#[test]
fn every_seed_is_run_once_in_seed_order() {
    let outcome = toy_test(None).seeds(10..16).jobs(3).run();
    let seeds: Vec<u64> = outcome.results.iter().map(|r| r.seed).collect();
    assert_eq!(seeds, vec![10, 11, 12, 13, 14, 15]);
    assert!(outcome.results.iter().all(|r| r.verdict == Verdict::Valid));
    assert!(outcome.is_valid());
    assert_eq!(outcome.message(), None);
    outcome.assert_valid();
}

#[test]
fn options_no_run_can_take_are_refused_naming_the_flag() {
    let err = toy_test(None).nodes(0).seeds(0..3).try_run().unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "--nodes 0: a cluster needs at least one node"
    );
    let err = std::panic::catch_unwind(|| Test::new(|n| ToyCluster::new(n, None)).name("My Store"))
        .unwrap_err();
    let message = err.downcast_ref::<String>().unwrap();
    assert_eq!(
        message,
        "ladon: adapter name \"My Store\": use lowercase letters, digits and '-', starting with a letter"
    );
}

#[test]
fn expect_failure_says_how_many_seeds_were_valid() {
    let outcome = toy_test(None).seeds(0..2).run();
    let err = std::panic::catch_unwind(|| {
        outcome.expect_failure();
    })
    .unwrap_err();
    assert_eq!(
        err.downcast_ref::<String>().unwrap(),
        "ladon: expected a failing seed, but all 2 seeds of toy-cluster-list-append (0..2) were valid"
    );
}

#[test]
fn an_adapter_name_no_program_registered_is_refused_by_name() {
    let err = "my-store-nowhere".parse::<AdapterKind>().unwrap_err();
    assert!(
        err.starts_with("unknown adapter \"my-store-nowhere\": expected one of reference, toy, process, automerge, yrs, loro"),
        "{err}"
    );
    let err = ladon_harness::adapters::register(
        "toy",
        "",
        std::sync::Arc::new(ladon_harness::adapters::ClusterAdapter(|o: &RunOptions| {
            Ok(ToyCluster::new(o.nodes, None))
        })),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "adapter name \"toy\" is one of Ladon's own adapters; pick another"
    );
}
