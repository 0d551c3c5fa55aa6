//! Expanding a suite's groups into runs: options × workload × nemesis × seed.

use super::spec::{Expect, Require, Suite};

/// One run of the suite.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Case {
    /// Position in the suite, from 0.
    pub id: usize,
    pub group: String,
    /// Cases of one cell differ only by seed (used by `require = "any"`).
    pub cell: usize,
    /// `group / workload / nemesis / options / seed N`, blank dimensions left out.
    pub name: String,
    /// `ladon run` arguments, without `--seed` and `--store`.
    pub args: Vec<String>,
    pub seed: u64,
    pub expect: Expect,
    pub require: Require,
}

impl Case {
    /// A directory name unique in the suite.
    pub fn slug(&self) -> String {
        let mut s: String = self
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        while s.contains("__") {
            s = s.replace("__", "_");
        }
        s.truncate(100);
        format!("{:03}-{}", self.id, s.trim_matches('_'))
    }

    /// The command that reproduces this run (without `--store`).
    pub fn command(&self) -> String {
        let mut parts = vec![crate::store::program().to_string(), "run".to_string()];
        parts.extend(self.args.iter().cloned());
        parts.push("--seed".into());
        parts.push(self.seed.to_string());
        parts.join(" ")
    }
}

/// Every run of the suite, in file order: groups, then options, workloads,
/// nemeses and seeds.
pub fn expand(suite: &Suite) -> Vec<Case> {
    let mut out = Vec::new();
    let mut cell = 0;
    for g in &suite.groups {
        for opts in &g.options {
            for w in &g.workloads {
                for n in &g.nemeses {
                    let mut args = Vec::new();
                    if let Some(a) = &g.adapter {
                        args.extend(["--adapter".to_string(), a.clone()]);
                    }
                    if !w.is_empty() {
                        args.extend(["--workload".to_string(), w.clone()]);
                    }
                    if !n.is_empty() {
                        args.extend(["--nemesis".to_string(), n.clone()]);
                    }
                    args.extend(opts.iter().cloned());
                    args.extend(g.args.iter().cloned());
                    let mut label = vec![g.name.clone()];
                    label.extend(
                        [w.clone(), n.clone(), opts.join(" ")]
                            .into_iter()
                            .filter(|s| !s.is_empty()),
                    );
                    for &seed in &g.seeds {
                        out.push(Case {
                            id: out.len(),
                            group: g.name.clone(),
                            cell,
                            name: format!("{} / seed {seed}", label.join(" / ")),
                            args: args.clone(),
                            seed,
                            expect: g.expect.clone(),
                            require: g.require,
                        });
                    }
                    cell += 1;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::spec::parse;
    use super::*;

    #[test]
    fn expands_the_matrix_in_file_order() {
        let s = parse(
            r#"
[[group]]
name = "a"
adapter = "reference"
options = ["--strategy crdt", "--strategy lww"]
workload = ["list-append", "register"]
nemesis = "partition"
seeds = [1, 2]
args = "--time-limit 3"
expect = "valid"

[[group]]
name = "b"
seeds = [9]
expect = "invalid"
"#,
            "s.toml",
        )
        .unwrap();
        let cases = expand(&s);
        assert_eq!(cases.len(), 2 * 2 * 2 + 1);
        assert_eq!(
            cases[0].name,
            "a / list-append / partition / --strategy crdt / seed 1"
        );
        assert_eq!(
            cases[0].command(),
            "ladon run --adapter reference --workload list-append --nemesis partition --strategy crdt --time-limit 3 --seed 1"
        );
        assert_eq!(
            cases[0].slug(),
            "000-a_list-append_partition_--strategy_crdt_seed_1"
        );
        assert_eq!((cases[1].cell, cases[1].seed), (0, 2));
        assert_eq!(
            cases[2].name,
            "a / register / partition / --strategy crdt / seed 1"
        );
        assert_eq!(cases[2].cell, 1);
        assert_eq!(cases[8].name, "b / seed 9");
        assert_eq!(cases[8].command(), "ladon run --seed 9");
        assert_eq!(cases[8].cell, 4);
    }
}
