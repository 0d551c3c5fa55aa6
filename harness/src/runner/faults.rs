//! Applying the nemesis's actions to the simulated world, and recording
//! each as the history's nemesis event (names from history.md; our own for
//! loss, duplication, clogs, strobes and non-group partitions).

use ladon_adapters::node::Cluster;
use serde_json::{json, Value as Json};

use super::record::Recorder;
use super::tick::Tick;
use crate::nemesis::Action;
use crate::sim::World;

/// Applies one fault to the world and records it in the history.
pub(super) fn apply_fault<C: Cluster>(
    world: &mut World<C, Tick>,
    rec: &mut Recorder,
    action: Action,
    drifts: &[i64],
) -> anyhow::Result<()> {
    let now = world.now();
    match action {
        Action::Partition(cut) => {
            let value = match &cut.groups {
                Some(groups) => Json::Array(groups.iter().map(|g| rec.names_json(g)).collect()),
                None => {
                    let links: Vec<Json> = cut
                        .blocked
                        .iter()
                        .map(|&(a, b)| rec.names_json(&[a, b]))
                        .collect();
                    json!({ "cut": links })
                }
            };
            let f = if cut.groups.is_some() {
                "partition"
            } else {
                "partition-links"
            };
            world.partition(cut);
            rec.nemesis(now, f, value)?;
        }
        Action::Heal => {
            world.heal();
            rec.nemesis(now, "heal", Json::Null)?;
        }
        Action::ClockBump(bumps) => {
            for &(node, off) in &bumps {
                world.clocks_mut().set_offset(node, off);
            }
            let offsets = world.clocks().offsets(now);
            let map: serde_json::Map<String, Json> = offsets
                .iter()
                .enumerate()
                .map(|(i, o)| (rec.names[i].clone(), json!(o)))
                .collect();
            rec.nemesis(now, "clock-skew", Json::Object(map))?;
        }
        Action::ClockStrobe {
            nodes,
            delta_ns,
            period_ns,
            duration_ns,
        } => {
            for &node in &nodes {
                world
                    .clocks_mut()
                    .strobe(node, now, delta_ns, period_ns, duration_ns);
            }
            let map: serde_json::Map<String, Json> = nodes
                .iter()
                .map(|&i| (rec.names[i].clone(), json!(delta_ns)))
                .collect();
            rec.nemesis(
                now,
                "clock-strobe",
                json!({ "delta": Json::Object(map), "period_ns": period_ns, "duration_ns": duration_ns }),
            )?;
        }
        Action::ClockReset => {
            world.clocks_mut().reset(now);
            for (i, &d) in drifts.iter().enumerate() {
                if d != 0 {
                    world.clocks_mut().set_drift(i, now, d);
                }
            }
            rec.nemesis(now, "clock-reset", Json::Null)?;
        }
        Action::Crash(nodes) => {
            nodes.iter().for_each(|&i| world.crash(i));
            let v = rec.names_json(&nodes);
            rec.nemesis(now, "crash", v)?;
        }
        Action::Restart(nodes) => {
            nodes.iter().for_each(|&i| world.restart(i));
            let v = rec.names_json(&nodes);
            rec.nemesis(now, "restart", v)?;
        }
        Action::Pause(nodes) => {
            nodes.iter().for_each(|&i| world.pause(i));
            let v = rec.names_json(&nodes);
            rec.nemesis(now, "pause", v)?;
        }
        Action::Resume(nodes) => {
            nodes.iter().for_each(|&i| world.resume(i));
            let v = rec.names_json(&nodes);
            rec.nemesis(now, "resume", v)?;
        }
        Action::Loss(p) => {
            world.set_loss(p);
            rec.nemesis(now, "loss", json!({ "p": p }))?;
        }
        Action::LossStop => {
            world.set_loss(0.0);
            rec.nemesis(now, "loss-stop", Json::Null)?;
        }
        Action::Dup(p) => {
            world.set_duplicate(p);
            rec.nemesis(now, "duplicate", json!({ "p": p }))?;
        }
        Action::DupStop => {
            world.set_duplicate(0.0);
            rec.nemesis(now, "duplicate-stop", Json::Null)?;
        }
        Action::Clog(node) => {
            world.clog(node);
            let v = rec.names_json(&[node]);
            rec.nemesis(now, "clog", v)?;
        }
        Action::Unclog(node) => {
            world.unclog(node);
            let v = rec.names_json(&[node]);
            rec.nemesis(now, "unclog", v)?;
        }
    }
    Ok(())
}
