//! Explicit nemesis schedules: a run's faults as data. By default the
//! nemesis draws its steps from the seed while the run goes
//! (`nemesis::Nemesis`); `--nemesis-schedule FILE` instead applies
//! exactly these steps at exactly these virtual times and draws nothing.
//! `ladon shrink` records the schedule a seeded run applied, then drops,
//! shortens and simplifies its steps.
//!
//! The file is JSON: `{"steps": [{"at": "2500ms", "action": {"partition":
//! {"blocked": [[0,1],[1,0]], "groups": [[0],[1]]}}}, {"at": "4s", "action":
//! "heal"}]}`. Node indices are 0-based (`n1` is 0).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::dur::Dur;
use crate::nemesis::Action;
use crate::net::Cut;

/// One step: an action at a virtual time (from the start of the run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleStep {
    pub at: Dur,
    pub action: Action,
}

/// The whole fault schedule of a run, in the order the steps apply.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NemesisSchedule {
    pub steps: Vec<ScheduleStep>,
    /// The file it was read from (`--nemesis-schedule FILE`), for a live
    /// run's reproduce line; not part of the schedule's JSON.
    #[serde(skip)]
    pub source: Option<std::path::PathBuf>,
}

/// Two schedules are equal when their steps are (wherever they were read).
impl PartialEq for NemesisSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.steps == other.steps
    }
}

impl NemesisSchedule {
    /// Reads a schedule file; errors name the file, line and column.
    pub fn from_file(path: &Path) -> Result<NemesisSchedule, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--nemesis-schedule {}: {e}", path.display()))?;
        let mut schedule: NemesisSchedule = serde_json::from_str(&text).map_err(|e| {
            format!(
                "--nemesis-schedule {}:{}:{}: {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        schedule.source = Some(path.to_path_buf());
        Ok(schedule)
    }

    /// clap's value parser for `--nemesis-schedule FILE`.
    pub fn parse_arg(s: &str) -> Result<NemesisSchedule, String> {
        NemesisSchedule::from_file(Path::new(s))
    }

    /// Every node index must exist, naming the step.
    pub fn validate(&self, nodes: usize) -> Result<(), String> {
        for (i, step) in self.steps.iter().enumerate() {
            if let Some(bad) = step.action.nodes().into_iter().find(|&x| x >= nodes) {
                return Err(format!(
                    "--nemesis-schedule: step {} ({} at {}): node index {bad} out of range for --nodes {nodes}",
                    i + 1,
                    step.action.name(),
                    step.at
                ));
            }
        }
        Ok(())
    }

    /// The schedule for a cluster of `n` nodes: nodes from `n` on leave
    /// every step, and steps left with no node are dropped.
    pub fn restrict(&self, n: usize) -> NemesisSchedule {
        NemesisSchedule {
            source: None,
            steps: self
                .steps
                .iter()
                .filter_map(|s| {
                    restrict_action(&s.action, n).map(|action| ScheduleStep { at: s.at, action })
                })
                .collect(),
        }
    }

    /// Steps counted by name, e.g. `1 partition, 1 heal` (`no faults`).
    pub fn describe(&self) -> String {
        if self.steps.is_empty() {
            return "no faults".into();
        }
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut order: Vec<&str> = Vec::new();
        for s in &self.steps {
            let name = s.action.name();
            if !counts.contains_key(name) {
                order.push(name);
            }
            *counts.entry(name).or_default() += 1;
        }
        order
            .iter()
            .map(|name| format!("{} {name}", counts[name]))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Action {
    /// The name of the step, as the history's nemesis events spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Partition(c) if c.groups.is_some() => "partition",
            Action::Partition(_) => "partition-links",
            Action::Heal => "heal",
            Action::ClockBump(_) => "clock-skew",
            Action::ClockStrobe { .. } => "clock-strobe",
            Action::ClockReset => "clock-reset",
            Action::Crash(_) => "crash",
            Action::Restart(_) => "restart",
            Action::Pause(_) => "pause",
            Action::Resume(_) => "resume",
            Action::Loss(_) => "loss",
            Action::LossStop => "loss-stop",
            Action::Dup(_) => "duplicate",
            Action::DupStop => "duplicate-stop",
            Action::Clog(_) => "clog",
            Action::Unclog(_) => "unclog",
        }
    }

    /// Every node index the action names.
    pub fn nodes(&self) -> Vec<usize> {
        match self {
            Action::Partition(c) => {
                let mut v: Vec<usize> = c.blocked.iter().flat_map(|&(a, b)| [a, b]).collect();
                v.extend(c.groups.iter().flatten().flatten());
                v
            }
            Action::ClockBump(b) => b.iter().map(|&(x, _)| x).collect(),
            Action::ClockStrobe { nodes, .. }
            | Action::Crash(nodes)
            | Action::Restart(nodes)
            | Action::Pause(nodes)
            | Action::Resume(nodes) => nodes.clone(),
            Action::Clog(x) | Action::Unclog(x) => vec![*x],
            Action::Heal
            | Action::ClockReset
            | Action::Loss(_)
            | Action::LossStop
            | Action::Dup(_)
            | Action::DupStop => Vec::new(),
        }
    }

    /// The action that ends this one (`None` for the ending actions).
    pub fn stop(&self) -> Option<fn(&Action) -> bool> {
        Some(match self {
            Action::Partition(_) => |a| matches!(a, Action::Heal),
            Action::ClockBump(_) | Action::ClockStrobe { .. } => {
                |a| matches!(a, Action::ClockReset)
            }
            Action::Crash(_) => |a| matches!(a, Action::Restart(_)),
            Action::Pause(_) => |a| matches!(a, Action::Resume(_)),
            Action::Loss(_) => |a| matches!(a, Action::LossStop),
            Action::Dup(_) => |a| matches!(a, Action::DupStop),
            Action::Clog(_) => |a| matches!(a, Action::Unclog(_)),
            _ => return None,
        })
    }
}

fn restrict_action(a: &Action, n: usize) -> Option<Action> {
    let keep = |v: &[usize]| -> Option<Vec<usize>> {
        let v: Vec<usize> = v.iter().copied().filter(|&x| x < n).collect();
        (!v.is_empty()).then_some(v)
    };
    Some(match a {
        Action::Partition(cut) => match &cut.groups {
            Some(groups) => {
                let groups: Vec<Vec<usize>> = groups.iter().filter_map(|g| keep(g)).collect();
                if groups.len() < 2 {
                    return None;
                }
                Action::Partition(Cut::from_groups(n, groups))
            }
            None => {
                let blocked: std::collections::BTreeSet<(usize, usize)> = cut
                    .blocked
                    .iter()
                    .copied()
                    .filter(|&(a, b)| a < n && b < n)
                    .collect();
                if blocked.is_empty() {
                    return None;
                }
                Action::Partition(Cut {
                    blocked,
                    groups: None,
                })
            }
        },
        Action::ClockBump(b) => {
            let b: Vec<(usize, i64)> = b.iter().copied().filter(|&(x, _)| x < n).collect();
            if b.is_empty() {
                return None;
            }
            Action::ClockBump(b)
        }
        Action::ClockStrobe {
            nodes,
            delta_ns,
            period_ns,
            duration_ns,
        } => Action::ClockStrobe {
            nodes: keep(nodes)?,
            delta_ns: *delta_ns,
            period_ns: *period_ns,
            duration_ns: *duration_ns,
        },
        Action::Crash(v) => Action::Crash(keep(v)?),
        Action::Restart(v) => Action::Restart(keep(v)?),
        Action::Pause(v) => Action::Pause(keep(v)?),
        Action::Resume(v) => Action::Resume(keep(v)?),
        Action::Clog(x) if *x >= n => return None,
        Action::Unclog(x) if *x >= n => return None,
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched() -> NemesisSchedule {
        NemesisSchedule {
            steps: vec![
                ScheduleStep {
                    at: Dur(2_500_000_000),
                    action: Action::Partition(Cut::from_groups(3, vec![vec![2], vec![0, 1]])),
                },
                ScheduleStep {
                    at: Dur::secs(3),
                    action: Action::Crash(vec![2]),
                },
                ScheduleStep {
                    at: Dur::secs(4),
                    action: Action::Heal,
                },
            ],
            source: None,
        }
    }

    #[test]
    fn a_schedule_round_trips_through_json_and_reads_as_steps() {
        let s = sched();
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains(r#""at":"2500ms""#), "{text}");
        assert!(text.contains(r#""action":"heal""#), "{text}");
        assert_eq!(serde_json::from_str::<NemesisSchedule>(&text).unwrap(), s);
        assert_eq!(s.describe(), "1 partition, 1 crash, 1 heal");
        assert_eq!(NemesisSchedule::default().describe(), "no faults");
    }

    #[test]
    fn fewer_nodes_drop_the_steps_that_only_named_them() {
        let two = sched().restrict(2);
        assert_eq!(two.steps.len(), 1, "{two:?}");
        assert_eq!(two.steps[0].action, Action::Heal);
        assert_eq!(
            sched().validate(2).unwrap_err(),
            "--nemesis-schedule: step 1 (partition at 2500ms): node index 2 out of range for --nodes 2"
        );
        assert!(sched().validate(3).is_ok());
    }

    #[test]
    fn a_bad_file_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        std::fs::write(
            &p,
            "{\"steps\": [\n {\"at\": \"1s\", \"action\": \"quake\"}]}",
        )
        .unwrap();
        let err = NemesisSchedule::from_file(&p).unwrap_err();
        assert!(
            err.starts_with(&format!("--nemesis-schedule {}:2:", p.display())),
            "{err}"
        );
        assert!(err.contains("quake"), "{err}");
    }
}
