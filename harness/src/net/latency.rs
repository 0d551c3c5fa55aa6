//! Per-link latency distributions: how long one message copy spends on the wire.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// A latency distribution in nanoseconds. Parsed from `--latency`:
/// `constant:5ms`, `uniform:1ms..20ms`, `exponential:5ms` (mean).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    Constant(u64),
    Uniform {
        min: u64,
        max: u64,
    },
    /// Exponential with the given mean, capped at 20 times the mean so one
    /// unlucky draw cannot stall a run.
    Exponential {
        mean: u64,
    },
}

impl Default for Latency {
    fn default() -> Self {
        Latency::Uniform {
            min: 1_000_000,
            max: 10_000_000,
        }
    }
}

impl Latency {
    /// Draws one latency.
    pub fn sample(&self, rng: &mut impl Rng) -> u64 {
        match *self {
            Latency::Constant(ns) => ns,
            Latency::Uniform { min, max } => {
                if max <= min {
                    min
                } else {
                    rng.random_range(min..=max)
                }
            }
            Latency::Exponential { mean } => {
                let u: f64 = rng.random::<f64>();
                let x = -(1.0 - u).ln() * mean as f64;
                (x.min(20.0 * mean as f64)) as u64
            }
        }
    }

    /// The distribution's mean, used to size reordering delays.
    pub fn mean(&self) -> u64 {
        match *self {
            Latency::Constant(ns) => ns,
            Latency::Uniform { min, max } => (min + max.max(min)) / 2,
            Latency::Exponential { mean } => mean,
        }
    }
}

/// Parses a duration such as `250us`, `5ms`, `2s`, `1.5s`, `300ns` (a bare
/// number is milliseconds) into nanoseconds.
pub fn parse_duration_ns(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ns") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e6)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e9)
    } else {
        (s, 1e6)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 300ns, 250us, 5ms, 2s"))?;
    if !(v >= 0.0 && v.is_finite()) {
        return Err(format!(
            "invalid duration {s:?}: must be a non-negative number"
        ));
    }
    Ok((v * mult).round() as u64)
}

/// Formats nanoseconds the way [`parse_duration_ns`] reads them back.
pub fn format_duration_ns(ns: u64) -> String {
    if ns == 0 {
        "0ms".into()
    } else if ns.is_multiple_of(1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else if ns.is_multiple_of(1_000_000) {
        format!("{}ms", ns / 1_000_000)
    } else if ns.is_multiple_of(1_000) {
        format!("{}us", ns / 1_000)
    } else {
        format!("{ns}ns")
    }
}

impl Latency {
    /// For people, in the one duration format of every report:
    /// "uniform 1.000 ms to 10.000 ms", "exponential, mean 7.623 ms".
    pub fn describe(&self) -> String {
        use ladon_checker::explain::duration;
        match *self {
            Latency::Constant(ns) => format!("constant {}", duration(ns)),
            Latency::Uniform { min, max } => {
                format!("uniform {} to {}", duration(min), duration(max))
            }
            Latency::Exponential { mean } => format!("exponential, mean {}", duration(mean)),
        }
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match *self {
            Latency::Constant(ns) => write!(f, "constant:{}", format_duration_ns(ns)),
            Latency::Uniform { min, max } => write!(
                f,
                "uniform:{}..{}",
                format_duration_ns(min),
                format_duration_ns(max)
            ),
            Latency::Exponential { mean } => {
                write!(f, "exponential:{}", format_duration_ns(mean))
            }
        }
    }
}

impl FromStr for Latency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, arg) = s.split_once(':').ok_or_else(|| {
            format!(
                "invalid latency {s:?}: expected constant:D, uniform:MIN..MAX or exponential:MEAN"
            )
        })?;
        match kind {
            "constant" => Ok(Latency::Constant(parse_duration_ns(arg)?)),
            "uniform" => {
                let (a, b) = arg
                    .split_once("..")
                    .ok_or_else(|| format!("invalid latency {s:?}: uniform needs MIN..MAX"))?;
                let (min, max) = (parse_duration_ns(a)?, parse_duration_ns(b)?);
                if max < min {
                    return Err(format!("invalid latency {s:?}: MAX is below MIN"));
                }
                Ok(Latency::Uniform { min, max })
            }
            "exponential" => Ok(Latency::Exponential { mean: parse_duration_ns(arg)? }),
            other => Err(format!(
                "unknown latency distribution {other:?} in {s:?}: expected constant, uniform or exponential"
            )),
        }
    }
}

impl Serialize for Latency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn parses_and_prints_round_trip() {
        assert_eq!(
            "exponential:7623351ns"
                .parse::<Latency>()
                .unwrap()
                .describe(),
            "exponential, mean 7.623 ms"
        );
        assert_eq!(
            "uniform:1ms..10ms".parse::<Latency>().unwrap().describe(),
            "uniform 1.000 ms to 10.000 ms"
        );
        for s in ["constant:5ms", "uniform:1ms..20ms", "exponential:250us"] {
            let l: Latency = s.parse().unwrap();
            assert_eq!(l.to_string(), s);
        }
        assert_eq!(parse_duration_ns("1.5s").unwrap(), 1_500_000_000);
        assert!("uniform:5ms..1ms".parse::<Latency>().is_err());
        assert!("gauss:5ms"
            .parse::<Latency>()
            .unwrap_err()
            .contains("gauss"));
    }

    #[test]
    fn samples_stay_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let u = Latency::Uniform { min: 10, max: 20 };
        let e = Latency::Exponential { mean: 1000 };
        let mut sum = 0;
        for _ in 0..10_000 {
            let x = u.sample(&mut rng);
            assert!((10..=20).contains(&x));
            let y = e.sample(&mut rng);
            assert!(y <= 20_000);
            sum += y;
        }
        let mean = sum / 10_000;
        assert!((900..1100).contains(&mean), "exponential mean {mean}");
    }
}
