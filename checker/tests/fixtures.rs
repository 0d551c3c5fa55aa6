//! Every fixture history under `tests/fixtures/` is checked and its report
//! (YAML) and summary (text) are snapshotted. Fixtures under `anomalies/` are
//! checked against every guarantee, so each anomaly shows as forbidden; the
//! rest under the `ladon check` default (convergence, no-lost-writes), except
//! where a sibling `NAME.guarantees` file lists the guarantees (fixtures
//! written by `ladon shrink --fixture`, under `shrunk/`).

use std::path::Path;

use ladon_checker::report::Guarantee;
use ladon_checker::{check_path, CheckOptions};

fn options(path: &Path) -> CheckOptions {
    // A fixture from `ladon shrink --fixture` names the guarantees its run
    // was checked under in a sibling `.guarantees` file.
    if let Ok(list) = std::fs::read_to_string(path.with_extension("guarantees")) {
        return CheckOptions {
            guarantees: Guarantee::parse_list(list.trim()).expect("valid guarantees file"),
            ..CheckOptions::default()
        };
    }
    let all = path.components().any(|c| c.as_os_str() == "anomalies");
    let lin = path.components().any(|c| c.as_os_str() == "linearizable");
    CheckOptions {
        guarantees: if lin {
            vec![Guarantee::Linearizable]
        } else if all {
            Guarantee::ALL
                .into_iter()
                .filter(|&g| g != Guarantee::Linearizable)
                .collect()
        } else {
            Guarantee::default_for_check()
        },
        // The budget fixtures get a small budget: `budget-exhausted` runs
        // out on purpose; `budget-decided` (ten concurrent writes, the
        // first one read last) ran out of it before the search's
        // reductions and is decided within it now.
        lin_budget: if path
            .file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with("budget-"))
        {
            200
        } else {
            ladon_checker::analysis::linearizable::DEFAULT_BUDGET
        },
        ..CheckOptions::default()
    }
}

#[test]
fn fixture_reports() {
    insta::glob!("fixtures/**/*.jsonl", |path| {
        let report = check_path(path, &options(path)).expect("fixture readable");
        insta::assert_yaml_snapshot!("report", report);
        insta::assert_snapshot!("summary", report.summary_text());
    });
}
