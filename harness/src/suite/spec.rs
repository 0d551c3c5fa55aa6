//! The suite file (`ladon suite FILE.toml`): groups of runs, each a matrix of
//! adapter options × workloads × nemeses × seeds with one expectation.
//!
//! ```toml
//! name = "reference"
//! jobs = 2              # parallel runs (default: available cores)
//! timeout = 120         # seconds per run before it is killed (default 300)
//! args = "--time-limit 5"   # flags for every run of every group
//!
//! [[group]]
//! name = "convergent strategies"
//! adapter = "reference"
//! options = ["--strategy crdt", "--strategy version-vector"]
//! workload = ["list-append", "register"]
//! nemesis = ["partition", "partition,clock"]
//! seeds = [1, 2]                 # or { from = 1, count = 4 }
//! expect = "valid"
//!
//! [[group]]
//! name = "lww loses writes under skew"
//! options = ["--strategy lww"]
//! workload = "register"
//! nemesis = "clock"
//! seeds = { from = 1, count = 8 }
//! expect = "invalid"
//! anomalies = ["conflict-loss"]  # each must be found
//! require = "any"                # one seed of each cell suffices (default "every")
//! ```

use std::ops::Range;
use std::path::Path;

use ladon_checker::report::Anomaly;
use serde::Deserialize;
use toml::Spanned;

/// A string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl Default for OneOrMany {
    fn default() -> Self {
        OneOrMany::Many(Vec::new())
    }
}

impl OneOrMany {
    pub fn values(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Seeds {
    List(Vec<u64>),
    Range { from: u64, count: u64 },
}

impl Seeds {
    pub fn values(&self) -> Vec<u64> {
        match self {
            Seeds::List(v) => v.clone(),
            Seeds::Range { from, count } => (0..*count).map(|i| from + i).collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub name: Spanned<String>,
    #[serde(default)]
    pub adapter: Option<String>,
    #[serde(default)]
    pub options: OneOrMany,
    #[serde(default)]
    pub workload: OneOrMany,
    #[serde(default)]
    pub nemesis: OneOrMany,
    pub seeds: Spanned<Seeds>,
    #[serde(default)]
    pub args: String,
    pub expect: Spanned<String>,
    #[serde(default)]
    pub anomalies: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub require: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSuite {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub jobs: Option<usize>,
    #[serde(default)]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub args: String,
    #[serde(default, rename = "group")]
    pub groups: Vec<Spanned<RawGroup>>,
}

/// What a run must show.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Valid,
    /// Invalid, with each of these anomalies found.
    Invalid(Vec<Anomaly>),
}

/// Whether every seed of a cell must meet the expectation, or one suffices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Require {
    Every,
    Any,
}

/// A validated group.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    pub adapter: Option<String>,
    /// Adapter option sets, each already split into arguments; one empty set when none.
    pub options: Vec<Vec<String>>,
    pub workloads: Vec<String>,
    pub nemeses: Vec<String>,
    pub seeds: Vec<u64>,
    pub args: Vec<String>,
    pub expect: Expect,
    pub require: Require,
}

/// A validated suite.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    pub name: String,
    pub jobs: Option<usize>,
    pub timeout_secs: u64,
    pub groups: Vec<Group>,
}

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("cannot read suite file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: String,
        line: usize,
        message: String,
    },
}

fn line_of(src: &str, span: Range<usize>) -> usize {
    src[..span.start.min(src.len())].matches('\n').count() + 1
}

fn split_args(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// Reads and validates a suite file.
pub fn load(path: &Path) -> Result<Suite, SuiteError> {
    let src = std::fs::read_to_string(path).map_err(|source| SuiteError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&src, &path.display().to_string())
}

/// Parses suite text; `path` names it in errors.
pub fn parse(src: &str, path: &str) -> Result<Suite, SuiteError> {
    let raw: RawSuite = toml::from_str(src).map_err(|e| SuiteError::Syntax {
        path: path.to_string(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let invalid = |span: Range<usize>, message: String| SuiteError::Invalid {
        path: path.to_string(),
        line: line_of(src, span),
        message,
    };
    let stem = Path::new(path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "suite".into());
    if raw.groups.is_empty() {
        return Err(SuiteError::Invalid {
            path: path.to_string(),
            line: 1,
            message: "no [[group]] tables: a suite needs at least one group of runs".into(),
        });
    }
    if raw.jobs == Some(0) {
        return Err(SuiteError::Invalid {
            path: path.to_string(),
            line: 1,
            message: "jobs must be at least 1".into(),
        });
    }
    let mut groups: Vec<Group> = Vec::new();
    for g in &raw.groups {
        let span = g.span();
        let g = g.get_ref();
        let name = g.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(invalid(g.name.span(), "group name is empty".into()));
        }
        if groups.iter().any(|x| x.name == name) {
            return Err(invalid(
                g.name.span(),
                format!("group name {name:?} is used twice"),
            ));
        }
        let seeds = g.seeds.get_ref().values();
        if seeds.is_empty() {
            return Err(invalid(
                g.seeds.span(),
                format!("group {name:?}: seeds is empty"),
            ));
        }
        let anomalies = match &g.anomalies {
            None => Vec::new(),
            Some(a) => {
                let mut out = Vec::new();
                for n in a.get_ref() {
                    out.push(
                        n.parse::<Anomaly>()
                            .map_err(|e| invalid(a.span(), format!("group {name:?}: {e}")))?,
                    );
                }
                out
            }
        };
        let expect = match g.expect.get_ref().as_str() {
            "valid" => {
                if let Some(a) = g.anomalies.as_ref().filter(|a| !a.get_ref().is_empty()) {
                    return Err(invalid(
                        a.span(),
                        format!("group {name:?}: anomalies are listed but expect = \"valid\"; use expect = \"invalid\""),
                    ));
                }
                Expect::Valid
            }
            "invalid" => Expect::Invalid(anomalies),
            other => {
                return Err(invalid(
                    g.expect.span(),
                    format!(
                        "group {name:?}: expect = {other:?}; expected \"valid\" or \"invalid\""
                    ),
                ))
            }
        };
        let require = match g.require.as_ref().map(|r| (r.get_ref().as_str(), r.span())) {
            None | Some(("every", _)) => Require::Every,
            Some(("any", _)) => Require::Any,
            Some((other, span)) => {
                return Err(invalid(
                    span,
                    format!("group {name:?}: require = {other:?}; expected \"every\" or \"any\""),
                ))
            }
        };
        let mut options: Vec<Vec<String>> =
            g.options.values().iter().map(|o| split_args(o)).collect();
        if options.is_empty() {
            options.push(Vec::new());
        }
        let nonempty = |v: Vec<String>| if v.is_empty() { vec![String::new()] } else { v };
        let mut args = split_args(&raw.args);
        args.extend(split_args(&g.args));
        for (flag, field) in [("--seed", "seeds"), ("--store", "the suite's --store")] {
            if args
                .iter()
                .chain(options.iter().flatten())
                .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
            {
                return Err(invalid(
                    span.clone(),
                    format!("group {name:?}: {flag} is set by the suite; use {field} instead"),
                ));
            }
        }
        groups.push(Group {
            name,
            adapter: g.adapter.clone(),
            options,
            workloads: nonempty(g.workload.values()),
            nemeses: nonempty(g.nemesis.values()),
            seeds,
            args,
            expect,
            require,
        });
    }
    Ok(Suite {
        name: raw.name.unwrap_or(stem),
        jobs: raw.jobs,
        timeout_secs: raw.timeout.unwrap_or(300),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "ref"
args = "--time-limit 5"

[[group]]
name = "convergent"
adapter = "reference"
options = ["--strategy crdt", "--strategy version-vector --topology ring"]
workload = ["list-append", "register"]
nemesis = "partition"
seeds = [1, 2]
expect = "valid"

[[group]]
name = "lww"
options = "--strategy lww"
seeds = { from = 10, count = 3 }
args = "--nodes 5"
expect = "invalid"
anomalies = ["conflict-loss", "lost-write"]
require = "any"
"#;

    #[test]
    fn parses_groups_with_defaults() {
        let s = parse(GOOD, "suites/ref.toml").unwrap();
        assert_eq!(s.name, "ref");
        assert_eq!(s.timeout_secs, 300);
        let g = &s.groups[0];
        assert_eq!(
            g.options[1],
            vec!["--strategy", "version-vector", "--topology", "ring"]
        );
        assert_eq!(g.workloads, vec!["list-append", "register"]);
        assert_eq!(g.nemeses, vec!["partition"]);
        assert_eq!(g.args, vec!["--time-limit", "5"]);
        let g = &s.groups[1];
        assert_eq!(g.seeds, vec![10, 11, 12]);
        assert_eq!(g.workloads, vec![""]);
        assert_eq!(g.args, vec!["--time-limit", "5", "--nodes", "5"]);
        assert_eq!(
            g.expect,
            Expect::Invalid(vec![Anomaly::ConflictLoss, Anomaly::LostWrite])
        );
        assert_eq!(g.require, Require::Any);
    }

    fn err(src: &str) -> String {
        parse(src, "s.toml").unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let bad_anomaly = GOOD.replace("\"lost-write\"", "\"lost-writes\"");
        let e = err(&bad_anomaly);
        assert!(
            e.starts_with("s.toml:20: group \"lww\": unknown anomaly \"lost-writes\""),
            "{e}"
        );
        let e = err(&GOOD.replace("expect = \"valid\"", "expect = \"ok\""));
        assert!(
            e.starts_with("s.toml:12: group \"convergent\": expect = \"ok\""),
            "{e}"
        );
        let e = err(&GOOD.replace("seeds = [1, 2]", "seeds = []"));
        assert!(
            e.starts_with("s.toml:11: group \"convergent\": seeds is empty"),
            "{e}"
        );
        let e = err(&GOOD.replace("nemesis = \"partition\"", "nemeses = \"partition\""));
        assert!(
            e.contains("s.toml: TOML parse error at line 10")
                && e.contains("unknown field `nemeses`"),
            "{e}"
        );
        let e = err(&GOOD.replace("--nodes 5", "--seed 5"));
        assert!(
            e.contains("group \"lww\": --seed is set by the suite"),
            "{e}"
        );
        let e = err(&GOOD.replace("require = \"any\"", "require = \"all\""));
        assert!(e.starts_with("s.toml:21:"), "{e}");
        assert!(err("name = \"x\"\n").contains("no [[group]] tables"));
    }
}
