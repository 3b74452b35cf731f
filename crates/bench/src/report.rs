//! Result rows, ratios to the ceilings, and the JSON / markdown reports.

use std::fmt::Write as _;

use serde::Serialize;

use crate::stats::Stats;

/// A percentage of a ceiling scenario at the same concurrency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ratio {
    /// Name of the ceiling scenario.
    pub ceiling: String,
    /// This row's req/s as a percentage of the ceiling's.
    pub percent: f64,
}

/// One scenario at one concurrency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
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

/// Fills every row's `ratios` from the ceiling rows with the same connection count.
/// A ceiling that was not run (or measured nothing) is left out.
pub fn attach_ratios(rows: &mut [Row]) {
    let ceilings: Vec<(String, usize, f64)> = rows
        .iter()
        .map(|r| (r.scenario.clone(), r.connections, r.stats.rps))
        .collect();
    for row in rows.iter_mut() {
        row.ratios = row
            .quoted_against
            .iter()
            .filter_map(|name| {
                ceilings
                    .iter()
                    .find(|(n, c, _)| n == name && *c == row.connections)
                    .filter(|(_, _, rps)| *rps > 0.0)
                    .map(|(n, _, rps)| Ratio {
                        ceiling: n.clone(),
                        percent: row.stats.rps / rps * 100.0,
                    })
            })
            .collect();
    }
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
    /// Warm-up per row, seconds.
    pub warmup_secs: f64,
    /// Measured time per row, seconds.
    pub duration_secs: f64,
    /// The rows, in run order.
    pub rows: Vec<Row>,
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
        .map(|r| format!("{:.1}% of {}", r.percent, r.ceiling))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The markdown table of the rows.
pub fn markdown_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | conns | req/s | p50 ms | p99 ms | errors | % of ceiling |\n\
         |---|---:|---:|---:|---:|---:|---|\n",
    );
    for row in rows {
        let errors = if row.stats.non_2xx > 0 {
            format!("{} (+{} non-2xx)", row.stats.errors, row.stats.non_2xx)
        } else {
            row.stats.errors.to_string()
        };
        let _infallible = writeln!(
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
    }
    out
}

/// The whole `foundation.md`: a short header and the table.
pub fn markdown(report: &Report) -> String {
    format!(
        "# WhatPro Hub benchmark: foundation\n\n\
         {} · commit {} · {} cores · warm-up {} s · measured {} s per row\n\n{}",
        report.timestamp,
        report.git_commit.as_deref().unwrap_or("unknown"),
        report.cores,
        report.warmup_secs,
        report.duration_secs,
        markdown_table(&report.rows),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, conns: usize, rps: f64, against: &[&str], ceiling: Option<&str>) -> Row {
        Row {
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
            },
            ceiling: ceiling.map(str::to_owned),
            quoted_against: against.iter().map(|s| (*s).to_owned()).collect(),
            ratios: Vec::new(),
        }
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
        attach_ratios(&mut rows);
        assert_eq!(
            rows[0].ratios,
            vec![Ratio {
                ceiling: "m".into(),
                percent: 50.0
            }]
        );
        // The DB ceiling at 16 measured nothing and is left out.
        assert_eq!(
            rows[1].ratios,
            vec![Ratio {
                ceiling: "m".into(),
                percent: 25.0
            }]
        );
        assert!(rows[2].ratios.is_empty());
    }

    #[test]
    fn table_formatting() {
        let mut rows = vec![
            row("h", 1, 500.4, &["m"], None),
            row("m", 1, 1000.0, &[], Some("ceiling (HTTP)")),
        ];
        rows[0].stats.errors = 2;
        rows[0].stats.non_2xx = 3;
        attach_ratios(&mut rows);
        let table = markdown_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[2],
            "| h | 1 | 500 | 0.123 | 12.3 | 2 (+3 non-2xx) | 50.0% of m |"
        );
        assert_eq!(
            lines[3],
            "| m | 1 | 1000 | 0.123 | 12.3 | 0 | ceiling (HTTP) |"
        );
    }

    #[test]
    fn json_row_is_flat() {
        let value = serde_json::to_value(row("h", 1, 1.0, &["m"], None)).unwrap();
        assert_eq!(value["p99_ms"], 12.345);
        assert_eq!(value["connections"], 1);
        assert!(value.get("quoted_against").is_none());
    }
}
