//! Units: durations, sizes, rates, percentages and signals — one parser each.
//!
//! Each parser takes the text of a value and returns the typed value or a short reason; the
//! caller turns the reason into a diagnostic with the value's span. Each type prints back in a
//! canonical form (used by `kiln check --print` and, later, in cache keys).

use std::fmt;

/// A duration in nanoseconds (`250ms`, `1s`, `1m30s`, `1h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub u64);

/// A size in bytes (`64MiB`, `1G`, `512k`, `1000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(pub u64);

/// A rate in bits per second, as `tc` writes them (`10mbit`, `1gbit`, `100kbps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(pub u64);

/// A percentage (`1%`, `0.5%`); range checks belong to the user of the value.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percent(pub f64);

/// A signal, by number, with its canonical name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal {
    pub number: i32,
    pub name: &'static str,
}

/// Splits `"12.5ms"` into `(12.5, "ms")`.
fn number_and_unit(text: &str) -> Option<(f64, &str)> {
    let text = text.trim();
    let end = text
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(text.len(), |(i, _)| i);
    let (number, unit) = text.split_at(end);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    Some((value, unit.trim_start()))
}

impl Duration {
    pub fn parse(text: &str) -> Result<Duration, String> {
        const UNITS: &[(&str, f64)] = &[
            ("ns", 1.0),
            ("us", 1e3),
            ("µs", 1e3),
            ("ms", 1e6),
            ("s", 1e9),
            ("m", 60e9),
            ("h", 3600e9),
        ];
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err("a duration cannot be empty".into());
        }
        let mut total = 0f64;
        while !rest.is_empty() {
            let Some((value, after)) = number_and_unit(rest) else {
                return Err(format!("expected a number at `{rest}`"));
            };
            let unit_len = after
                .char_indices()
                .find(|(_, c)| c.is_ascii_digit())
                .map_or(after.len(), |(i, _)| i);
            let unit = &after[..unit_len];
            if unit.is_empty() {
                return Err("a duration needs a unit".into());
            }
            let Some((_, scale)) = UNITS.iter().find(|(u, _)| *u == unit) else {
                return Err(format!("unknown unit `{unit}`"));
            };
            total += value * scale;
            rest = &after[unit_len..];
        }
        if total > u64::MAX as f64 {
            return Err("the duration is too long".into());
        }
        Ok(Duration(total.round() as u64))
    }

    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0)
    }

    pub fn from_millis(ms: u64) -> Duration {
        Duration(ms.saturating_mul(1_000_000))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        for (unit, scale) in [
            ("h", 3_600_000_000_000u64),
            ("m", 60_000_000_000),
            ("s", 1_000_000_000),
            ("ms", 1_000_000),
            ("us", 1_000),
        ] {
            if ns >= scale && ns % scale == 0 {
                return write!(f, "{}{unit}", ns / scale);
            }
        }
        if ns == 0 {
            return write!(f, "0s");
        }
        write!(f, "{ns}ns")
    }
}

impl Size {
    pub fn parse(text: &str) -> Result<Size, String> {
        let Some((value, unit)) = number_and_unit(text) else {
            return Err("expected a number, e.g. `64MiB`".into());
        };
        let scale: u64 = match unit {
            "" | "B" | "b" => 1,
            "KiB" | "K" | "k" | "KB" | "kB" | "kb" => {
                if unit.ends_with("iB") || unit.len() == 1 {
                    1 << 10
                } else {
                    1000
                }
            }
            "MiB" | "M" | "m" | "MB" | "mb" => {
                if unit.ends_with("iB") || unit.len() == 1 {
                    1 << 20
                } else {
                    1_000_000
                }
            }
            "GiB" | "G" | "g" | "GB" | "gb" => {
                if unit.ends_with("iB") || unit.len() == 1 {
                    1 << 30
                } else {
                    1_000_000_000
                }
            }
            "TiB" | "T" | "t" | "TB" | "tb" => {
                if unit.ends_with("iB") || unit.len() == 1 {
                    1 << 40
                } else {
                    1_000_000_000_000
                }
            }
            other => return Err(format!("unknown unit `{other}`")),
        };
        let bytes = value * scale as f64;
        if bytes.fract() != 0.0 {
            return Err("a size must be a whole number of bytes".into());
        }
        if bytes > u64::MAX as f64 {
            return Err("the size is too large".into());
        }
        Ok(Size(bytes as u64))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, scale) in [
            ("TiB", 1u64 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ] {
            if b >= scale && b % scale == 0 {
                return write!(f, "{}{unit}", b / scale);
            }
        }
        write!(f, "{b}B")
    }
}

impl Rate {
    /// `tc`'s units: `bit`, `kbit`, `mbit`, `gbit`, `tbit` (powers of 1000), `kibit`…
    /// (powers of 1024), and `bps`, `kbps`, `mbps`, `gbps` (bytes per second).
    pub fn parse(text: &str) -> Result<Rate, String> {
        let Some((value, unit)) = number_and_unit(text) else {
            return Err("expected a number, e.g. `10mbit`".into());
        };
        let bits_per_sec: f64 = match unit.to_ascii_lowercase().as_str() {
            "bit" => 1.0,
            "kbit" => 1e3,
            "mbit" => 1e6,
            "gbit" => 1e9,
            "tbit" => 1e12,
            "kibit" => 1024.0,
            "mibit" => 1024.0 * 1024.0,
            "gibit" => 1024.0 * 1024.0 * 1024.0,
            "bps" => 8.0,
            "kbps" => 8e3,
            "mbps" => 8e6,
            "gbps" => 8e9,
            "" => return Err("a rate needs a unit".into()),
            other if other.ends_with("/s") => {
                return Err(format!(
                    "unknown unit `{unit}`: tc writes bytes per second as `bps`, `kbps`, `mbps`"
                ));
            }
            _ => return Err(format!("unknown unit `{unit}`")),
        };
        let rate = value * bits_per_sec;
        if rate > u64::MAX as f64 {
            return Err("the rate is too large".into());
        }
        Ok(Rate(rate.round() as u64))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        for (unit, scale) in [
            ("tbit", 1_000_000_000_000u64),
            ("gbit", 1_000_000_000),
            ("mbit", 1_000_000),
            ("kbit", 1_000),
        ] {
            if r >= scale && r % scale == 0 {
                return write!(f, "{}{unit}", r / scale);
            }
        }
        write!(f, "{r}bit")
    }
}

impl Percent {
    pub fn parse(text: &str) -> Result<Percent, String> {
        let text = text.trim();
        let Some(number) = text.strip_suffix('%') else {
            return Err("a percentage ends with `%`, e.g. `1%`".into());
        };
        match number_and_unit(number) {
            Some((value, "")) => Ok(Percent(value)),
            _ => Err(format!("`{number}` is not a number")),
        }
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

/// Linux signal numbers (x86_64, arm64 and most others share these).
const SIGNALS: &[(&str, i32)] = &[
    ("SIGHUP", 1),
    ("SIGINT", 2),
    ("SIGQUIT", 3),
    ("SIGILL", 4),
    ("SIGTRAP", 5),
    ("SIGABRT", 6),
    ("SIGBUS", 7),
    ("SIGFPE", 8),
    ("SIGKILL", 9),
    ("SIGUSR1", 10),
    ("SIGSEGV", 11),
    ("SIGUSR2", 12),
    ("SIGPIPE", 13),
    ("SIGALRM", 14),
    ("SIGTERM", 15),
    ("SIGSTKFLT", 16),
    ("SIGCHLD", 17),
    ("SIGCONT", 18),
    ("SIGSTOP", 19),
    ("SIGTSTP", 20),
    ("SIGTTIN", 21),
    ("SIGTTOU", 22),
    ("SIGURG", 23),
    ("SIGXCPU", 24),
    ("SIGXFSZ", 25),
    ("SIGVTALRM", 26),
    ("SIGPROF", 27),
    ("SIGWINCH", 28),
    ("SIGIO", 29),
    ("SIGPWR", 30),
    ("SIGSYS", 31),
];

impl Signal {
    /// `SIGTERM`, `TERM`, `sigterm` or `15`.
    pub fn parse(text: &str) -> Result<Signal, String> {
        let text = text.trim();
        if let Ok(number) = text.parse::<i32>() {
            return SIGNALS
                .iter()
                .find(|(_, n)| *n == number)
                .map(|(name, number)| Signal {
                    number: *number,
                    name,
                })
                .ok_or_else(|| format!("there is no signal number {number}"));
        }
        let upper = text.to_ascii_uppercase();
        let full = if upper.starts_with("SIG") {
            upper
        } else {
            format!("SIG{upper}")
        };
        SIGNALS
            .iter()
            .find(|(name, _)| *name == full)
            .map(|(name, number)| Signal {
                number: *number,
                name,
            })
            .ok_or_else(|| format!("`{text}` is not a signal"))
    }

    pub fn names() -> impl Iterator<Item = &'static str> {
        SIGNALS.iter().map(|(name, _)| *name)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

macro_rules! serialize_as_display {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}
serialize_as_display!(Duration, Size, Rate, Percent, Signal);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(Duration::parse("250ms"), Ok(Duration(250_000_000)));
        assert_eq!(Duration::parse("1m30s"), Ok(Duration(90_000_000_000)));
        assert_eq!(Duration::parse("1.5s"), Ok(Duration(1_500_000_000)));
        assert!(Duration::parse("5").is_err());
        assert!(Duration::parse("5 parsecs").is_err());
        assert!(Duration::parse("").is_err());
        assert!(Duration::parse("ms").is_err());
        assert_eq!(Duration::parse("90s").unwrap().to_string(), "90s");
        assert_eq!(Duration::parse("1m").unwrap().to_string(), "1m");
        assert_eq!(Duration::parse("20ms").unwrap().to_string(), "20ms");
    }

    #[test]
    fn sizes() {
        assert_eq!(Size::parse("64MiB"), Ok(Size(64 << 20)));
        assert_eq!(Size::parse("64m"), Ok(Size(64 << 20)));
        assert_eq!(Size::parse("1G"), Ok(Size(1 << 30)));
        assert_eq!(Size::parse("1GB"), Ok(Size(1_000_000_000)));
        assert_eq!(Size::parse("1000"), Ok(Size(1000)));
        assert!(Size::parse("12 apples").is_err());
        assert!(Size::parse("0.3B").is_err());
        assert_eq!(Size(128 << 20).to_string(), "128MiB");
    }

    #[test]
    fn rates() {
        assert_eq!(Rate::parse("10mbit"), Ok(Rate(10_000_000)));
        assert_eq!(Rate::parse("1Gbit"), Ok(Rate(1_000_000_000)));
        assert_eq!(Rate::parse("1kbps"), Ok(Rate(8_000)));
        assert!(Rate::parse("10").is_err());
        assert!(Rate::parse("10furlongs").is_err());
        assert_eq!(
            Rate::parse("10MB/s"),
            Err("unknown unit `MB/s`: tc writes bytes per second as `bps`, `kbps`, `mbps`".into())
        );
        assert_eq!(Rate(10_000_000).to_string(), "10mbit");
    }

    #[test]
    fn percentages() {
        assert_eq!(Percent::parse("1%"), Ok(Percent(1.0)));
        assert_eq!(Percent::parse("0.5%"), Ok(Percent(0.5)));
        assert_eq!(Percent::parse("150%"), Ok(Percent(150.0)));
        assert!(Percent::parse("1").is_err());
        assert!(Percent::parse("x%").is_err());
    }

    #[test]
    fn signals() {
        assert_eq!(Signal::parse("SIGTERM").unwrap().number, 15);
        assert_eq!(Signal::parse("term").unwrap().name, "SIGTERM");
        assert_eq!(Signal::parse("9").unwrap().name, "SIGKILL");
        assert!(Signal::parse("SIGFOO").is_err());
        assert!(Signal::parse("99").is_err());
    }
}
