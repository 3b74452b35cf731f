//! What the report says about the machine: cores, CPU model and load average (Linux `/proc`).

use std::fmt;

use serde::Serialize;

/// The three load averages of `/proc/loadavg`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoadAverage {
    /// Over the last minute.
    pub one: f64,
    /// Over the last 5 minutes.
    pub five: f64,
    /// Over the last 15 minutes.
    pub fifteen: f64,
}

impl fmt::Display for LoadAverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2} {:.2} {:.2}", self.one, self.five, self.fifteen)
    }
}

impl LoadAverage {
    /// Parses the content of `/proc/loadavg` (`0.52 0.58 0.59 1/467 12345`).
    pub fn parse(text: &str) -> Option<Self> {
        let mut fields = text.split_whitespace().map(str::parse::<f64>);
        let one = fields.next()?.ok()?;
        let five = fields.next()?.ok()?;
        let fifteen = fields.next()?.ok()?;
        Some(Self { one, five, fifteen })
    }

    /// The machine's load average now, when `/proc/loadavg` is readable.
    pub fn now() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/loadavg").ok()?)
    }
}

/// The first `model name` of a `/proc/cpuinfo` text.
fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name")
            .then(|| value.trim().to_owned())
            .filter(|v| !v.is_empty())
    })
}

/// The CPU model, when `/proc/cpuinfo` names it.
pub fn cpu_model() -> Option<String> {
    parse_cpu_model(&std::fs::read_to_string("/proc/cpuinfo").ok()?)
}

/// Logical CPUs available to this process.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_loadavg() {
        let load = LoadAverage::parse("0.52 1.58 10.50 1/467 12345\n").unwrap();
        assert_eq!(
            load,
            LoadAverage {
                one: 0.52,
                five: 1.58,
                fifteen: 10.5
            }
        );
        assert_eq!(load.to_string(), "0.52 1.58 10.50");
        assert_eq!(LoadAverage::parse("0.52 x 1"), None);
        assert_eq!(LoadAverage::parse(""), None);
    }

    #[test]
    fn parses_cpu_model() {
        let info = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\nmodel name\t: other\n";
        assert_eq!(
            parse_cpu_model(info).as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        assert_eq!(parse_cpu_model("processor : 0\n"), None);
    }
}
