//! SVG plots (plotters): latency over time by node with nemesis bands,
//! throughput, time from acknowledgement to visibility on every node,
//! convergence after the heal, and conflicts by class. Each returns SVG
//! markup; plotters escapes the text it draws (legends carry node names).

use std::collections::{BTreeMap, BTreeSet};

use ladon_checker::history::{Key, Mop, ReadValue};
use ladon_checker::report::Report;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::model::{Outcome, Timeline};

/// The page's content width (report.css).
const W: u32 = 1120;
const H: u32 = 300;
/// Points drawn per scatter series at most (evenly sampled beyond that).
const MAX_POINTS: usize = 4000;

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn node_colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn hex(c: &str) -> RGBColor {
    let p = |i| u8::from_str_radix(&c[i..i + 2], 16).unwrap_or(128);
    RGBColor(p(1), p(3), p(5))
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type Drawn<T> = Result<T, Box<dyn std::error::Error>>;

/// Draws into an SVG string; a drawing error becomes a short message.
fn svg(draw: impl FnOnce(&Area) -> Drawn<()>) -> String {
    svg_sized((W, H), draw)
}

/// Like [`svg`], at a given size.
fn svg_sized(size: (u32, u32), draw: impl FnOnce(&Area) -> Drawn<()>) -> String {
    let mut buf = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string()).and_then(|_| {
            draw(&root).map_err(|e| e.to_string())?;
            root.present().map_err(|e| e.to_string())
        })
    };
    match result {
        Ok(()) => buf,
        Err(e) => format!(
            "<p class=\"note\">plot failed: {}</p>",
            super::escape::esc(&e)
        ),
    }
}

/// Every plot's frame: its caption, margin and label areas.
fn frame<'a, 'b>(root: &'a Area<'b>, caption: &str) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(caption, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(50);
    builder
}

/// A chart over `0..xmax` by `0..ymax` with its mesh and axis descriptions drawn.
fn xy_chart<'a, 'b>(
    root: &'a Area<'b>,
    caption: &str,
    (xmax, ymax): (f64, f64),
    x_desc: &str,
    y_desc: &str,
) -> Drawn<Chart<'a, 'b>> {
    let mut chart = frame(root, caption).build_cartesian_2d(0f64..xmax, 0f64..ymax)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()?;
    Ok(chart)
}

/// The series legend, on a translucent white box with a black border.
fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, at: SeriesLabelPosition) -> Drawn<()> {
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// A legend entry for a line series: a short stroke in its colour.
fn line_key(c: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn sample<T: Clone>(v: &[T]) -> Vec<T> {
    if v.len() <= MAX_POINTS {
        return v.to_vec();
    }
    let step = v.len() as f64 / MAX_POINTS as f64;
    (0..MAX_POINTS)
        .map(|i| v[(i as f64 * step) as usize].clone())
        .collect()
}

/// Nemesis bands over an x axis in seconds, under the series.
fn bands<DB: DrawingBackend>(
    t: &Timeline,
    chart: &mut ChartContext<
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    ymax: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart.draw_series(t.faults.iter().map(|f| {
        Rectangle::new(
            [(secs(f.start), 0.0), (secs(f.end), ymax)],
            hex(super::timeline::fault_colour(&f.kind))
                .mix(0.3)
                .filled(),
        )
    }))?;
    Ok(())
}

/// Latency of completed client operations over time: one panel per node
/// (so no node's points hide another's), each with its own scale and its
/// quantiles in its caption, so even a constant latency says what it is.
pub fn latency(t: &Timeline) -> String {
    let nodes = &t.nodes;
    let mut by_node: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    let mut ns_by_node: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for op in t
        .ops
        .iter()
        .filter(|o| o.complete_index.is_some() && !o.is_final())
    {
        by_node
            .entry(op.node.as_str())
            .or_default()
            .push((secs(op.start), (op.end - op.start) as f64 / 1e6));
        ns_by_node
            .entry(op.node.as_str())
            .or_default()
            .push(op.end - op.start);
    }
    if by_node.is_empty() {
        return "<p class=\"note\">No completed client operation: no latency to plot.</p>".into();
    }
    let xmax = secs(t.end).max(1e-3);
    let panel_h = 150u32;
    let height = 30 + panel_h * by_node.len() as u32;
    svg_sized((W, height), |root| {
        let (title, rest) = root.split_vertically(30);
        title.titled(
            "Latency of ok operations by node, invoke to completion (nemesis shaded)",
            ("sans-serif", 16),
        )?;
        let panels = rest.split_evenly((by_node.len(), 1));
        for (panel, (n, pts)) in panels.iter().zip(&by_node) {
            let i = nodes.iter().position(|x| x == n).unwrap_or(0);
            let c = node_colour(i);
            let mut ns = ns_by_node[n].clone();
            ns.sort_unstable();
            let q = |p: f64| ns[((ns.len() - 1) as f64 * p).round() as usize];
            let d = ladon_checker::explain::duration;
            let constant = ns.first() == ns.last();
            let caption = format!(
                "{}: {} operation{}, p50 {}, p99 {}, max {}{}",
                if n.is_empty() { "?" } else { n },
                ns.len(),
                if ns.len() == 1 { "" } else { "s" },
                d(q(0.5)),
                d(q(0.99)),
                d(q(1.0)),
                if constant {
                    " (every one the same)"
                } else {
                    ""
                }
            );
            let ymax = pts.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1e-3) * 1.15;
            let mut chart = ChartBuilder::on(panel)
                .caption(caption, ("sans-serif", 13))
                .margin(4)
                .x_label_area_size(22)
                .y_label_area_size(60)
                .build_cartesian_2d(0f64..xmax, 0f64..ymax)?;
            chart
                .configure_mesh()
                .y_desc("ms")
                .y_labels(4)
                .x_labels(10)
                .draw()?;
            bands(t, &mut chart, ymax)?;
            chart.draw_series(
                sample(pts)
                    .into_iter()
                    .map(|p| Circle::new(p, 2, c.mix(0.6).filled())),
            )?;
        }
        Ok(())
    })
}

/// Completions per second by outcome.
pub fn throughput(t: &Timeline) -> String {
    let xmax = secs(t.end).max(1e-3);
    let buckets = 60usize;
    let width = xmax / buckets as f64;
    let mut counts: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for o in [Outcome::Ok, Outcome::Fail, Outcome::Info] {
        counts.insert(o.as_str(), vec![0.0; buckets]);
    }
    for op in t.ops.iter().filter(|o| !o.is_final()) {
        let b = ((secs(op.end) / width) as usize).min(buckets - 1);
        if let Some(v) = counts.get_mut(op.outcome.as_str()) {
            v[b] += 1.0 / width;
        }
    }
    let ymax = counts.values().flatten().fold(1.0f64, |a, &b| a.max(b)) * 1.1;
    svg(|root| {
        let mut chart = xy_chart(
            root,
            "Throughput (completions per second)",
            (xmax, ymax),
            "time (s)",
            "ops/s",
        )?;
        bands(t, &mut chart, ymax)?;
        for (name, colour) in [
            ("ok", hex("#4caf50")),
            ("fail", hex("#e53935")),
            ("info", hex("#fb8c00")),
        ] {
            let v = &counts[name];
            chart
                .draw_series(LineSeries::new(
                    v.iter()
                        .enumerate()
                        .map(|(i, &y)| ((i as f64 + 0.5) * width, y)),
                    colour.stroke_width(2),
                ))?
                .label(name)
                .legend(line_key(colour));
        }
        legend(&mut chart, SeriesLabelPosition::MiddleRight)
    })
}

/// Values a read observed, for keys that are not counters.
fn observed(v: &ReadValue) -> Vec<i64> {
    match v {
        ReadValue::Null => Vec::new(),
        ReadValue::Int(i) => vec![*i],
        ReadValue::List(l) => l.clone(),
    }
}

fn counter_keys(t: &Timeline) -> BTreeSet<&Key> {
    t.ops
        .iter()
        .flat_map(|o| o.mops.iter())
        .filter_map(|m| match m {
            Mop::Incr(k, _) => Some(k),
            _ => None,
        })
        .collect()
}

/// Per node, the delays (ns) from each acknowledged write's completion to the
/// first completed read on that node that observed it; and the number of
/// acknowledged writes.
pub fn visibility_delays(t: &Timeline) -> (BTreeMap<String, Vec<u64>>, usize) {
    let counters = counter_keys(t);
    let mut first_seen: BTreeMap<(&str, &Key, i64), u64> = BTreeMap::new();
    let mut reads: Vec<_> = t.ops.iter().filter(|o| o.outcome == Outcome::Ok).collect();
    reads.sort_by_key(|o| o.end);
    for op in reads {
        for m in &op.mops {
            if let Mop::Read(k, v) = m {
                if counters.contains(k) {
                    continue;
                }
                for x in observed(v) {
                    first_seen.entry((op.node.as_str(), k, x)).or_insert(op.end);
                }
            }
        }
    }
    let mut out: BTreeMap<String, Vec<u64>> =
        t.nodes.iter().map(|n| (n.clone(), Vec::new())).collect();
    let mut acked = 0;
    for op in t.ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        for m in &op.mops {
            if let Mop::Write(k, v) | Mop::Append(k, v) | Mop::Add(k, v) = m {
                acked += 1;
                for n in &t.nodes {
                    if let Some(&at) = first_seen.get(&(n.as_str(), k, *v)) {
                        out.get_mut(n)
                            .expect("node listed")
                            .push(at.saturating_sub(op.end));
                    }
                }
            }
        }
    }
    for v in out.values_mut() {
        v.sort_unstable();
    }
    (out, acked)
}

/// CDF, per node, of the time from acknowledgement to visibility.
pub fn visibility(t: &Timeline) -> String {
    let (delays, acked) = visibility_delays(t);
    if acked == 0 {
        return "<p class=\"note\">No acknowledged writes of registers, lists or sets.</p>".into();
    }
    let xmax = delays
        .values()
        .flatten()
        .map(|&d| d as f64 / 1e6)
        .fold(1.0f64, f64::max)
        * 1.05;
    svg(|root| {
        let mut chart = xy_chart(
            root,
            "Acknowledgement to visibility, by node (share of acknowledged writes)",
            (xmax, 1.0),
            "ms after the write was acknowledged",
            "visible",
        )?;
        for (i, (n, d)) in delays.iter().enumerate() {
            let c = node_colour(t.nodes.iter().position(|x| x == n).unwrap_or(i));
            let pts: Vec<(f64, f64)> = d
                .iter()
                .enumerate()
                .map(|(j, &ns)| (ns as f64 / 1e6, (j + 1) as f64 / acked as f64))
                .collect();
            let mut pts = sample(&pts);
            pts.insert(0, (0.0, 0.0));
            if let Some(&(_, y)) = pts.last() {
                pts.push((xmax, y));
            }
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
                .label(n.as_str())
                .legend(line_key(c));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// A state as compared for divergence: registers and sets as sets, lists as sequences.
fn state_of(v: &ReadValue, ordered: bool) -> Vec<i64> {
    let mut s = observed(v);
    if !ordered {
        s.sort_unstable();
    }
    s
}

/// Keys on which the nodes' latest final reads disagree, after each final
/// read completes: `(ns since the heal, disagreeing keys)`.
pub fn convergence_series(t: &Timeline) -> Vec<(u64, usize)> {
    let Some(heal) = t.heal_time() else {
        return Vec::new();
    };
    let lists: BTreeSet<&Key> = t
        .ops
        .iter()
        .flat_map(|o| o.mops.iter())
        .filter_map(|m| match m {
            Mop::Append(k, _) => Some(k),
            _ => None,
        })
        .collect();
    let mut finals: Vec<_> = t
        .ops
        .iter()
        .filter(|o| o.is_final() && o.outcome == Outcome::Ok)
        .collect();
    finals.sort_by_key(|o| o.end);
    let mut states: BTreeMap<&Key, BTreeMap<&str, Vec<i64>>> = BTreeMap::new();
    let mut disagree: BTreeSet<&Key> = BTreeSet::new();
    let mut out = Vec::new();
    for op in finals {
        for m in &op.mops {
            if let Mop::Read(k, v) = m {
                let per_node = states.entry(k).or_default();
                per_node.insert(op.node.as_str(), state_of(v, lists.contains(k)));
                let mut vals = per_node.values();
                let first = vals.next();
                if vals.all(|x| Some(x) == first) {
                    disagree.remove(k);
                } else {
                    disagree.insert(k);
                }
            }
        }
        out.push((op.end.saturating_sub(heal), disagree.len()));
    }
    out
}

/// Disagreeing keys over time since the heal, with the convergence time marked.
pub fn convergence(t: &Timeline, report: &Report) -> String {
    let series = convergence_series(t);
    if series.is_empty() {
        return "<p class=\"note\">No final phase in this history: nothing to plot.</p>".into();
    }
    let xmax = series.iter().map(|p| secs(p.0)).fold(1e-3f64, f64::max) * 1.05;
    let ymax = series.iter().map(|p| p.1).max().unwrap_or(0).max(1) as f64 * 1.1;
    svg(|root| {
        let mut chart = xy_chart(
            root,
            "Convergence after the heal (keys on which nodes disagree)",
            (xmax, ymax),
            "s after the heal",
            "keys disagreeing",
        )?;
        let blue = hex("#1f77b4");
        let mut pts = Vec::new();
        let mut last = None;
        for &(x, y) in &series {
            if let Some(prev) = last {
                pts.push((secs(x), prev as f64));
            }
            pts.push((secs(x), y as f64));
            last = Some(y);
        }
        chart.draw_series(LineSeries::new(pts, blue.stroke_width(2)))?;
        if let Some(c) = report.stats.convergence_ns {
            let x = secs(c);
            let green = hex("#2e7d32");
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, 0.0), (x, ymax)],
                    green.stroke_width(2),
                )))?
                .label(format!("converged at {x:.3} s"))
                .legend(line_key(green));
            legend(&mut chart, SeriesLabelPosition::MiddleRight)?;
        }
        Ok(())
    })
}

/// Keys per conflict class.
pub fn conflicts(report: &Report) -> String {
    let c = &report.conflicts;
    let classes = [
        ("without conflict", c.none),
        ("one winner (lww)", c.lww),
        ("siblings kept", c.siblings),
        ("merged", c.merged),
        ("diverged", c.diverged),
        ("no concurrent value kept", c.lost),
    ];
    let ymax = classes.iter().map(|x| x.1).max().unwrap_or(0).max(1) + 1;
    svg(|root| {
        let caption = format!(
            "Keys by how their concurrent writes ended ({} concurrent pairs; keys, not lost writes)",
            c.concurrent_pairs
        );
        let mut chart = frame(root, &caption)
            .build_cartesian_2d((0usize..classes.len() - 1).into_segmented(), 0u64..ymax)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                    classes.get(*i).map(|c| c.0).unwrap_or("").to_string()
                }
                SegmentValue::Last => String::new(),
            })
            .y_desc("keys")
            .draw()?;
        chart.draw_series(
            Histogram::vertical(&chart)
                .style_func(|x, _| match x {
                    SegmentValue::CenterOf(i) | SegmentValue::Exact(i) if *i >= 4 => {
                        hex("#e53935").filled()
                    }
                    _ => hex("#5c6bc0").filled(),
                })
                .margin(12)
                .data(classes.iter().enumerate().map(|(i, c)| (i, c.1))),
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::tests::events;

    fn history() -> Timeline {
        Timeline::from_events(&events(
            r#"{"index":0,"time":0,"type":"invoke","process":0,"node":"n1","f":"txn","value":[["append","x",1]]}
{"index":1,"time":1000000,"type":"ok","process":0,"node":"n1","f":"txn","value":[["append","x",1]]}
{"index":2,"time":2000000,"type":"info","process":"nemesis","f":"partition","value":[["n1"],["n2"]]}
{"index":3,"time":3000000,"type":"invoke","process":1,"node":"n2","f":"txn","value":[["r","x",null]]}
{"index":4,"time":4000000,"type":"ok","process":1,"node":"n2","f":"txn","value":[["r","x",null]]}
{"index":5,"time":5000000,"type":"info","process":"nemesis","f":"heal","value":null}
{"index":6,"time":6000000,"type":"invoke","process":0,"node":"n1","f":"final","value":[["r","x",null]]}
{"index":7,"time":7000000,"type":"ok","process":0,"node":"n1","f":"final","value":[["r","x",[1]]]}
{"index":8,"time":7000000,"type":"invoke","process":1,"node":"n2","f":"final","value":[["r","x",null]]}
{"index":9,"time":8000000,"type":"ok","process":1,"node":"n2","f":"final","value":[["r","x",[]]]}
{"index":10,"time":9000000,"type":"invoke","process":1,"node":"n2","f":"final","value":[["r","x",null]]}
{"index":11,"time":11000000,"type":"ok","process":1,"node":"n2","f":"final","value":[["r","x",[1]]]}"#,
        ))
    }

    #[test]
    fn visibility_is_measured_from_the_ack_per_node() {
        let (d, acked) = visibility_delays(&history());
        assert_eq!(acked, 1);
        assert_eq!(d["n1"], vec![6_000_000]);
        assert_eq!(d["n2"], vec![10_000_000]);
    }

    #[test]
    fn convergence_counts_disagreeing_keys_after_the_heal() {
        assert_eq!(
            convergence_series(&history()),
            vec![(2_000_000, 0), (3_000_000, 1), (6_000_000, 0)]
        );
    }

    #[test]
    fn latency_has_a_panel_per_node_with_its_quantiles() {
        let s = latency(&history());
        assert!(
            s.contains(
                "n1: 1 operation, p50 1.000 ms, p99 1.000 ms, max 1.000 ms (every one the same)"
            ),
            "{s}"
        );
        assert!(s.contains("n2: 1 operation, p50 1.000 ms"), "{s}");
    }

    #[test]
    fn plots_render_svg() {
        let t = history();
        for s in [latency(&t), throughput(&t), visibility(&t)] {
            assert!(s.starts_with("<svg"), "{s}");
            assert!(s.contains("n1") || s.contains("ok"));
        }
    }
}
