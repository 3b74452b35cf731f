//! Result rows, ratios to the ceilings, targets, and the JSON / markdown reports.

use std::fmt::Write as _;

use serde::Serialize;

use crate::machine::LoadAverage;
use crate::scenario::Goal;
use crate::stats::Stats;

/// This row relative to a reference scenario at the same concurrency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ratio {
    /// Name of the reference (ceiling) scenario.
    pub ceiling: String,
    /// This row's req/s as a percentage of the reference's.
    pub percent: f64,
    /// This row's p99 latency divided by the reference's (above 1: slower); `None` when the
    /// reference's p99 is zero.
    pub p99_ratio: Option<f64>,
}

/// One scenario at one concurrency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Report section (`foundation`, `iam` ...).
    pub section: String,
    /// Scenario name.
    pub scenario: String,
    /// Server (`hub`, `minimal`) or `postgres`.
    pub target: String,
    /// Concurrent connections / tasks.
    pub connections: usize,
    /// The measurements.
    #[serde(flatten)]
    pub stats: Stats,
    /// Set when this row is a ceiling: its label.
    pub ceiling: Option<String>,
    /// Ceilings this row is quoted against (filled into `ratios` by [`attach_ratios`]).
    #[serde(skip)]
    pub quoted_against: Vec<String>,
    /// This row relative to its ceilings.
    pub ratios: Vec<Ratio>,
}

/// Fills every row's `ratios` from the rows it is quoted against with the same connection
/// count. A reference that was not run (or measured nothing) is left out.
pub fn attach_ratios(rows: &mut [Row]) {
    let references: Vec<(String, usize, f64, f64)> = rows
        .iter()
        .map(|r| {
            (
                r.scenario.clone(),
                r.connections,
                r.stats.rps,
                r.stats.p99_ms,
            )
        })
        .collect();
    for row in rows.iter_mut() {
        row.ratios = row
            .quoted_against
            .iter()
            .filter_map(|name| {
                references
                    .iter()
                    .find(|(n, c, _, _)| n == name && *c == row.connections)
                    .filter(|(_, _, rps, _)| *rps > 0.0)
                    .map(|(n, _, rps, p99)| Ratio {
                        ceiling: n.clone(),
                        percent: row.stats.rps / rps * 100.0,
                        p99_ratio: (*p99 > 0.0).then(|| row.stats.p99_ms / p99),
                    })
            })
            .collect();
    }
}

/// A target and how the run did against it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoalResult {
    /// The scenario the target is about.
    pub scenario: String,
    /// The concurrency it applies to.
    pub connections: usize,
    /// The reference scenario.
    pub of: String,
    /// The lowest acceptable percentage of the reference's req/s.
    pub min_percent: f64,
    /// How the target is shown.
    pub label: String,
    /// The measured percentage; `None` when the row or its reference was not measured.
    pub percent: Option<f64>,
    /// The scenario's p99 divided by the reference's, when measured.
    pub p99_ratio: Option<f64>,
    /// Whether the target is met; `None` when not measured.
    pub met: Option<bool>,
    /// The percentage of every paired measurement (the table's row first, then the repeats);
    /// `percent` is their median. Empty when the target was measured once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<f64>,
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

impl GoalResult {
    /// Adds the percentages of repeated paired measurements: the verdict then rests on the
    /// median of every sample, which the machine's drifting background load moves far less
    /// than any single measurement.
    pub fn add_samples(&mut self, repeats: &[f64]) {
        let Some(first) = self.percent else {
            return;
        };
        self.samples = std::iter::once(first)
            .chain(repeats.iter().copied())
            .collect();
        self.percent = median(&self.samples);
        self.met = self.percent.map(|p| p >= self.min_percent);
    }
}

impl GoalResult {
    /// The verdict in words.
    pub fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "not measured",
        }
    }
}

/// Checks every `(scenario, goal)` against the rows (after [`attach_ratios`]).
pub fn evaluate_goals<'a>(
    goals: impl IntoIterator<Item = (&'a str, &'a Goal)>,
    rows: &[Row],
) -> Vec<GoalResult> {
    goals
        .into_iter()
        .map(|(scenario, goal)| {
            let ratio = rows
                .iter()
                .find(|r| r.scenario == scenario && r.connections == goal.connections)
                .and_then(|r| r.ratios.iter().find(|x| x.ceiling == goal.of));
            GoalResult {
                scenario: scenario.to_owned(),
                connections: goal.connections,
                of: goal.of.clone(),
                min_percent: goal.min_percent,
                label: goal.label.clone(),
                percent: ratio.map(|r| r.percent),
                p99_ratio: ratio.and_then(|r| r.p99_ratio),
                met: ratio.map(|r| r.percent >= goal.min_percent),
                samples: Vec::new(),
            }
        })
        .collect()
}

/// Everything written to `foundation.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When the run finished (RFC 3339, UTC).
    pub timestamp: String,
    /// `git rev-parse --short HEAD`, when available.
    pub git_commit: Option<String>,
    /// Logical CPUs of the machine.
    pub cores: usize,
    /// CPU model, when `/proc/cpuinfo` names it.
    pub cpu_model: Option<String>,
    /// `/proc/loadavg` before anything was started.
    pub loadavg_start: Option<LoadAverage>,
    /// `/proc/loadavg` after the last measurement.
    pub loadavg_end: Option<LoadAverage>,
    /// Warm-up per row, seconds.
    pub warmup_secs: f64,
    /// Measured time per row, seconds.
    pub duration_secs: f64,
    /// How the servers were set up for the run (non-default settings and the like).
    pub notes: Vec<String>,
    /// The rows, grouped by section, then in declaration order, then by concurrency.
    pub rows: Vec<Row>,
    /// The targets and whether they are met.
    pub goals: Vec<GoalResult>,
    /// Anything that makes rows doubtful or missing (skipped scenarios, failed exchanges).
    pub warnings: Vec<String>,
}

/// Formats milliseconds for the table.
fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.3}")
    } else {
        format!("{value:.1}")
    }
}

/// The "% of ceiling" cell of a row.
fn ceiling_cell(row: &Row) -> String {
    if let Some(label) = &row.ceiling {
        return label.clone();
    }
    if row.ratios.is_empty() {
        return "–".to_owned();
    }
    row.ratios
        .iter()
        .map(|r| match r.p99_ratio {
            Some(p99) => format!("{:.1}% of {} (p99 ×{p99:.2})", r.percent, r.ceiling),
            None => format!("{:.1}% of {}", r.percent, r.ceiling),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The "target" cell of a row: its goals at this concurrency.
fn goal_cell(row: &Row, goals: &[GoalResult]) -> String {
    goals
        .iter()
        .filter(|g| g.scenario == row.scenario && g.connections == row.connections)
        .map(|g| format!("{}: {}", g.label, g.verdict()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The markdown table of `rows`; with a "target" column when any row has a goal.
pub fn markdown_table(rows: &[Row], goals: &[GoalResult]) -> String {
    let with_goals = rows.iter().any(|r| !goal_cell(r, goals).is_empty());
    let mut out =
        String::from("| scenario | conns | req/s | p50 ms | p99 ms | errors | % of ceiling |");
    out.push_str(if with_goals { " target |\n" } else { "\n" });
    out.push_str("|---|---:|---:|---:|---:|---:|---|");
    out.push_str(if with_goals { "---|\n" } else { "\n" });
    for row in rows {
        let errors = if row.stats.non_2xx > 0 {
            format!(
                "{} (+{} non-2xx: {})",
                row.stats.errors,
                row.stats.non_2xx,
                row.stats.status_summary()
            )
        } else {
            row.stats.errors.to_string()
        };
        let _infallible = write!(
            out,
            "| {} | {} | {:.0} | {} | {} | {} | {} |",
            row.scenario,
            row.connections,
            row.stats.rps,
            ms(row.stats.p50_ms),
            ms(row.stats.p99_ms),
            errors,
            ceiling_cell(row),
        );
        if with_goals {
            let _infallible = write!(out, " {} |", goal_cell(row, goals));
        }
        out.push('\n');
    }
    out
}

/// The sections of `rows`, in the order they first appear.
fn sections(rows: &[Row]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for row in rows {
        if !names.contains(&row.section.as_str()) {
            names.push(&row.section);
        }
    }
    names
}

/// The machine line: cores, CPU and load, with the caveat about noise.
fn machine_line(report: &Report) -> String {
    let cpu = report
        .cpu_model
        .as_deref()
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    let load =
        |l: Option<&LoadAverage>| l.map_or_else(|| "unknown".to_owned(), LoadAverage::to_string);
    format!(
        "Machine: {} cores{cpu}; load average (1/5/15 min) {} at start, {} at end. \
         On a shared machine the absolute numbers are noisy: compare the ratios within one run.",
        report.cores,
        load(report.loadavg_start.as_ref()),
        load(report.loadavg_end.as_ref()),
    )
}

/// The whole `foundation.md`: header, machine, notes, one table per section, targets, warnings.
pub fn markdown(report: &Report) -> String {
    let mut out = format!(
        "# WhatPro Hub benchmark: foundation\n\n\
         {} · commit {} · warm-up {} s · measured {} s per row\n\n{}\n",
        report.timestamp,
        report.git_commit.as_deref().unwrap_or("unknown"),
        report.warmup_secs,
        report.duration_secs,
        machine_line(report),
    );
    if !report.notes.is_empty() {
        out.push('\n');
        for note in &report.notes {
            let _infallible = writeln!(out, "- {note}");
        }
    }
    for section in sections(&report.rows) {
        let rows: Vec<Row> = report
            .rows
            .iter()
            .filter(|r| r.section == section)
            .cloned()
            .collect();
        let _infallible = write!(
            out,
            "\n## {section}\n\n{}",
            markdown_table(&rows, &report.goals)
        );
    }
    if !report.goals.is_empty() {
        out.push_str("\n## targets\n\n");
        for g in &report.goals {
            let measured = match (g.percent, g.p99_ratio) {
                (Some(percent), Some(p99)) => {
                    format!("{percent:.1}% of {} req/s, p99 ×{p99:.2}", g.of)
                }
                (Some(percent), None) => format!("{percent:.1}% of {} req/s", g.of),
                _ => format!("no {}-connection row in this run", g.connections),
            };
            let measured = if g.samples.len() > 1 {
                let list: Vec<String> = g.samples.iter().map(|p| format!("{p:.1}%")).collect();
                format!(
                    "{measured}; median of {} paired measurements ({})",
                    g.samples.len(),
                    list.join(", ")
                )
            } else {
                measured
            };
            let _infallible = writeln!(
                out,
                "- {} at {} connections: {measured} (target {}): **{}**",
                g.scenario,
                g.connections,
                g.label,
                g.verdict()
            );
        }
    }
    if !report.warnings.is_empty() {
        out.push_str("\n## warnings\n\n");
        for w in &report.warnings {
            let _infallible = writeln!(out, "- {w}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, conns: usize, rps: f64, against: &[&str], ceiling: Option<&str>) -> Row {
        Row {
            section: "foundation".to_owned(),
            scenario: name.to_owned(),
            target: "hub".to_owned(),
            connections: conns,
            stats: Stats {
                requests: 10,
                rps,
                p50_ms: 0.1234,
                p90_ms: 0.2,
                p99_ms: 12.345,
                max_ms: 20.0,
                errors: 0,
                non_2xx: 0,
                non_2xx_statuses: Default::default(),
            },
            ceiling: ceiling.map(str::to_owned),
            quoted_against: against.iter().map(|s| (*s).to_owned()).collect(),
            ratios: Vec::new(),
        }
    }

    fn goal(of: &str, connections: usize) -> Goal {
        Goal {
            connections,
            of: of.to_owned(),
            min_percent: 85.0,
            label: ">= 85% of m".to_owned(),
        }
    }

    #[test]
    fn medians_and_repeated_samples_decide_the_verdict() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        let mut goal = GoalResult {
            scenario: "a".to_owned(),
            connections: 64,
            of: "b".to_owned(),
            min_percent: 85.0,
            label: ">= 85%".to_owned(),
            percent: Some(81.0),
            p99_ratio: None,
            met: Some(false),
            samples: Vec::new(),
        };
        goal.add_samples(&[90.0, 88.0, 79.0, 95.0]);
        assert_eq!(goal.samples, [81.0, 90.0, 88.0, 79.0, 95.0]);
        assert_eq!((goal.percent, goal.met), (Some(88.0), Some(true)));
        let mut unmeasured = GoalResult {
            percent: None,
            met: None,
            ..goal
        };
        unmeasured.samples.clear();
        unmeasured.add_samples(&[99.0]);
        assert_eq!((unmeasured.percent, unmeasured.met), (None, None));
    }

    #[test]
    fn ratios_match_same_concurrency_only() {
        let mut rows = vec![
            row("h", 1, 500.0, &["m", "db"], None),
            row("h", 16, 1000.0, &["m", "db"], None),
            row("m", 1, 1000.0, &[], Some("ceiling (HTTP)")),
            row("m", 16, 4000.0, &[], Some("ceiling (HTTP)")),
            row("db", 16, 0.0, &[], Some("ceiling (DB)")),
        ];
        rows[0].stats.p99_ms = 24.69;
        attach_ratios(&mut rows);
        assert_eq!(rows[0].ratios.len(), 1);
        assert_eq!(rows[0].ratios[0].ceiling, "m");
        assert!((rows[0].ratios[0].percent - 50.0).abs() < 1e-9);
        assert!((rows[0].ratios[0].p99_ratio.unwrap() - 2.0).abs() < 1e-9);
        // The DB ceiling at 16 measured nothing and is left out.
        assert_eq!(
            rows[1].ratios,
            vec![Ratio {
                ceiling: "m".into(),
                percent: 25.0,
                p99_ratio: Some(1.0),
            }]
        );
        assert!(rows[2].ratios.is_empty());
    }

    #[test]
    fn goals_met_missed_and_unmeasured() {
        let mut rows = vec![
            row("a", 64, 900.0, &["m"], None),
            row("b", 64, 800.0, &["m"], None),
            row("m", 64, 1000.0, &[], None),
        ];
        attach_ratios(&mut rows);
        let (g64, g16) = (goal("m", 64), goal("m", 16));
        let results = evaluate_goals([("a", &g64), ("b", &g64), ("a", &g16)], &rows);
        assert_eq!(results[0].met, Some(true));
        assert!((results[0].percent.unwrap() - 90.0).abs() < 1e-9);
        assert_eq!(results[0].p99_ratio, Some(1.0));
        assert_eq!(results[1].met, Some(false));
        assert_eq!(results[1].verdict(), "NOT met");
        assert_eq!(results[2].met, None);
        assert_eq!(results[2].verdict(), "not measured");
    }

    #[test]
    fn table_formatting() {
        let mut rows = vec![
            row("h", 1, 500.4, &["m"], None),
            row("m", 1, 1000.0, &[], Some("ceiling (HTTP)")),
        ];
        rows[0].stats.errors = 2;
        rows[0].stats.non_2xx = 3;
        rows[0].stats.non_2xx_statuses.insert(429, 3);
        attach_ratios(&mut rows);
        let table = markdown_table(&rows, &[]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[0],
            "| scenario | conns | req/s | p50 ms | p99 ms | errors | % of ceiling |"
        );
        assert_eq!(
            lines[2],
            "| h | 1 | 500 | 0.123 | 12.3 | 2 (+3 non-2xx: 429×3) | 50.0% of m (p99 ×1.00) |"
        );
        assert_eq!(
            lines[3],
            "| m | 1 | 1000 | 0.123 | 12.3 | 0 | ceiling (HTTP) |"
        );
    }

    #[test]
    fn table_gets_a_target_column_when_a_row_has_a_goal() {
        let mut rows = vec![
            row("h", 64, 900.0, &["m"], None),
            row("m", 64, 1000.0, &[], None),
        ];
        attach_ratios(&mut rows);
        let g = goal("m", 64);
        let goals = evaluate_goals([("h", &g)], &rows);
        let table = markdown_table(&rows, &goals);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].ends_with("| % of ceiling | target |"),
            "{}",
            lines[0]
        );
        assert!(lines[1].ends_with("|---|---|"), "{}", lines[1]);
        assert!(lines[2].ends_with("| >= 85% of m: met |"), "{}", lines[2]);
        assert!(lines[3].ends_with("| – |  |"), "{}", lines[3]);
    }

    #[test]
    fn markdown_has_machine_sections_targets_and_warnings() {
        let mut rows = vec![
            row("h", 64, 900.0, &["m"], None),
            row("m", 64, 1000.0, &[], None),
        ];
        rows[0].section = "iam".to_owned();
        attach_ratios(&mut rows);
        let g = goal("m", 64);
        let report = Report {
            timestamp: "2026-01-01T00:00:00Z".to_owned(),
            git_commit: None,
            cores: 2,
            cpu_model: Some("Test CPU".to_owned()),
            loadavg_start: Some(LoadAverage {
                one: 1.5,
                five: 0.25,
                fifteen: 0.0,
            }),
            loadavg_end: None,
            warmup_secs: 1.0,
            duration_secs: 5.0,
            notes: vec!["the bench raises X".to_owned()],
            goals: evaluate_goals([("h", &g)], &rows),
            rows,
            warnings: vec!["something odd".to_owned()],
        };
        let md = markdown(&report);
        assert!(
            md.contains("Machine: 2 cores (Test CPU); load average (1/5/15 min) 1.50 0.25 0.00 at start, unknown at end."),
            "{md}"
        );
        assert!(md.contains("\n- the bench raises X\n"), "{md}");
        // Sections in order of first appearance.
        let iam = md.find("## iam").unwrap();
        let foundation = md.find("## foundation").unwrap();
        assert!(iam < foundation, "{md}");
        assert!(
            md.contains(
                "- h at 64 connections: 90.0% of m req/s, p99 ×1.00 (target >= 85% of m): **met**"
            ),
            "{md}"
        );
        assert!(md.contains("## warnings\n\n- something odd\n"), "{md}");
    }

    #[test]
    fn json_row_is_flat() {
        let value = serde_json::to_value(row("h", 1, 1.0, &["m"], None)).unwrap();
        assert_eq!(value["p99_ms"], 12.345);
        assert_eq!(value["connections"], 1);
        assert_eq!(value["section"], "foundation");
        assert!(value.get("quoted_against").is_none());
        assert!(value.get("non_2xx_statuses").is_none());
    }
}
