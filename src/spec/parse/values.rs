//! Typed values read from KDL values: names, units, addresses, ports, choices.
//!
//! Each helper reports its own diagnostic with the value's span and returns `None` on error,
//! so a node parser can go on and collect every problem in one run.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::spec::diag::{Code, Diagnostics, did_you_mean};
use crate::spec::reader::Value;
use crate::spec::source::Spanned;
use crate::spec::units::{Duration, Percent, Rate, Signal, Size};

/// Names of images, networks, containers, hosts and tests become host names, DNS names and
/// parts of interface names: lowercase letters, digits and `-`, `_`, `.`.
pub(crate) fn check_name(diags: &mut Diagnostics, name: &Spanned<String>, kind: &str) {
    let n = &name.value;
    let valid_char =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.');
    let problem = if n.is_empty() {
        Some("it is empty".to_string())
    } else if n.len() > 63 {
        Some(format!(
            "it is {} characters long; the limit is 63",
            n.len()
        ))
    } else if n.chars().any(|c| c.is_ascii_uppercase()) {
        Some("names are lowercase".to_string())
    } else if !n.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        Some("it must start with a lowercase letter or a digit".to_string())
    } else {
        n.chars().find(|c| !valid_char(*c)).map(|c| match c {
            ' ' => "a space is not allowed".to_string(),
            c if c.is_whitespace() || c.is_control() => format!("{c:?} is not allowed"),
            c => format!("`{c}` is not allowed"),
        })
    };
    if let Some(problem) = problem {
        let lower: String = n
            .to_ascii_lowercase()
            .chars()
            .map(|c| if valid_char(c) { c } else { '-' })
            .collect();
        diags
            .error(
                Code::InvalidName,
                name.span,
                format!("invalid {kind} name `{n}`"),
            )
            .label(problem)
            .maybe_help(
                (!lower.is_empty() && lower != *n)
                    .then(|| format!("use lowercase letters, digits, `-`, `_` and `.`: `{lower}`")),
            );
    }
}

/// A string value parsed by a unit parser; a bare integer gets a hint to add the unit.
fn unit_value<T>(
    diags: &mut Diagnostics,
    value: Value<'_>,
    what: &str,
    code: Code,
    kind: &str,
    example: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Option<Spanned<T>> {
    if let kdl::KdlValue::Integer(i) = value.value {
        diags
            .error(code, value.span, format!("{what} needs a unit"))
            .label("this is a bare number")
            .help(format!(
                "write a {kind} as a string with a unit, e.g. `\"{i}{example}\"`"
            ));
        return None;
    }
    let text = value.string(diags, what)?;
    match parse(&text.value) {
        Ok(v) => Some(Spanned::new(v, text.span)),
        Err(reason) => {
            // A plain number lacks only its unit: show it with one.
            let number = text.value.trim();
            let help = if !number.is_empty() && number.parse::<f64>().is_ok_and(f64::is_finite) {
                format!("write `\"{number}{example}\"`")
            } else {
                format!("write a {kind} like `\"{}\"`", example_for(kind))
            };
            diags
                .error(code, text.span, format!("invalid {kind} `{}`", text.value))
                .label(reason)
                .help(help);
            None
        }
    }
}

fn example_for(kind: &str) -> &'static str {
    match kind {
        "duration" => "250ms",
        "size" => "64MiB",
        "rate" => "10mbit",
        "percentage" => "1%",
        _ => "",
    }
}

pub(crate) fn duration(
    diags: &mut Diagnostics,
    value: Value<'_>,
    what: &str,
) -> Option<Spanned<Duration>> {
    unit_value(
        diags,
        value,
        what,
        Code::InvalidDuration,
        "duration",
        "ms",
        Duration::parse,
    )
}

pub(crate) fn rate(diags: &mut Diagnostics, value: Value<'_>, what: &str) -> Option<Spanned<Rate>> {
    unit_value(
        diags,
        value,
        what,
        Code::InvalidRate,
        "rate",
        "mbit",
        Rate::parse,
    )
}

pub(crate) fn percent(
    diags: &mut Diagnostics,
    value: Value<'_>,
    what: &str,
) -> Option<Spanned<Percent>> {
    unit_value(
        diags,
        value,
        what,
        Code::InvalidPercentage,
        "percentage",
        "%",
        Percent::parse,
    )
}

/// A size: a string with a unit, or an integer number of bytes.
pub(crate) fn size(diags: &mut Diagnostics, value: Value<'_>, what: &str) -> Option<Spanned<Size>> {
    if let kdl::KdlValue::Integer(i) = value.value {
        return match u64::try_from(*i) {
            Ok(bytes) => Some(Spanned::new(Size(bytes), value.span)),
            Err(_) => {
                diags
                    .error(Code::InvalidSize, value.span, format!("invalid size `{i}`"))
                    .label("a size cannot be negative")
                    .help("write a size like `\"64MiB\"`");
                None
            }
        };
    }
    unit_value(
        diags,
        value,
        what,
        Code::InvalidSize,
        "size",
        "MiB",
        Size::parse,
    )
}

pub(crate) fn signal(
    diags: &mut Diagnostics,
    value: Value<'_>,
    what: &str,
) -> Option<Spanned<Signal>> {
    let text = match value.value {
        kdl::KdlValue::Integer(i) => Spanned::new(i.to_string(), value.span),
        _ => value.string(diags, what)?,
    };
    match Signal::parse(&text.value) {
        Ok(s) => Some(Spanned::new(s, text.span)),
        Err(reason) => {
            let upper = text.value.trim().to_ascii_uppercase();
            let guess = if upper.starts_with("SIG") {
                upper
            } else {
                format!("SIG{upper}")
            };
            let is_number = text.value.trim().parse::<i64>().is_ok();
            let suggestion = if is_number {
                None
            } else {
                did_you_mean(&guess, Signal::names())
            };
            let help = suggestion.unwrap_or_else(|| {
                if is_number {
                    "signal numbers go from 1 to 31; better, use a name like `SIGTERM`".into()
                } else {
                    "use a name like `SIGTERM` or `SIGINT`".into()
                }
            });
            diags
                .error(
                    Code::InvalidSignal,
                    text.span,
                    format!("invalid signal `{}`", text.value),
                )
                .label(reason)
                .help(help);
            None
        }
    }
}

pub(crate) fn subnet(
    diags: &mut Diagnostics,
    value: Value<'_>,
    what: &str,
) -> Option<Spanned<IpNetwork>> {
    let text = value.string(diags, what)?;
    match text.value.parse::<IpNetwork>() {
        Ok(_) if !text.value.contains('/') => {
            let example = if text.value.contains(':') { "64" } else { "24" };
            diags
                .error(
                    Code::InvalidSubnet,
                    text.span,
                    format!("invalid subnet `{}`", text.value),
                )
                .label("the prefix length is missing")
                .help(format!(
                    "write the subnet in CIDR form, e.g. `\"{}/{example}\"`",
                    text.value
                ));
            None
        }
        Ok(net) if net.ip() != net.network() => {
            diags
                .error(
                    Code::InvalidSubnet,
                    text.span,
                    format!("invalid subnet `{}`", text.value),
                )
                .label("the address has bits set outside the prefix")
                .help(format!(
                    "write the network address: `{}/{}`",
                    net.network(),
                    net.prefix()
                ));
            None
        }
        Ok(net) => Some(Spanned::new(net, text.span)),
        Err(_) => {
            let reason = match text.value.split_once('/') {
                Some((ip, prefix)) if ip.parse::<IpAddr>().is_ok() => {
                    let max = if ip.contains(':') { 128 } else { 32 };
                    if prefix.parse::<u8>().is_ok_and(|p| p > max) {
                        format!("the prefix length is at most {max}")
                    } else {
                        format!("`{prefix}` is not a prefix length")
                    }
                }
                Some((ip, _)) => format!("`{ip}` is not an IP address"),
                None => "not a CIDR network".to_string(),
            };
            diags
                .error(
                    Code::InvalidSubnet,
                    text.span,
                    format!("invalid subnet `{}`", text.value),
                )
                .label(reason)
                .help("write a subnet like `\"10.89.0.0/24\"`");
            None
        }
    }
}

pub(crate) fn address(
    diags: &mut Diagnostics,
    value: Value<'_>,
    what: &str,
) -> Option<Spanned<IpAddr>> {
    let text = value.string(diags, what)?;
    match text.value.parse::<IpAddr>() {
        Ok(ip) => Some(Spanned::new(ip, text.span)),
        Err(_) => {
            let (label, help) = match text.value.split_once('/') {
                Some((ip, _)) if ip.parse::<IpAddr>().is_ok() => (
                    "an address has no prefix length".to_string(),
                    format!("write `\"{ip}\"`; the prefix comes from the network's subnet"),
                ),
                _ => (
                    "not an IP address".to_string(),
                    "write an IPv4 or IPv6 address, e.g. `\"10.89.0.10\"`".to_string(),
                ),
            };
            diags
                .error(
                    Code::InvalidAddress,
                    text.span,
                    format!("invalid address `{}`", text.value),
                )
                .label(label)
                .help(help);
            None
        }
    }
}

pub(crate) fn port(diags: &mut Diagnostics, value: Value<'_>, what: &str) -> Option<Spanned<u16>> {
    let n = value.integer(diags, what)?;
    match u16::try_from(n.value) {
        Ok(p) if p > 0 => Some(Spanned::new(p, n.span)),
        _ => {
            diags
                .error(
                    Code::InvalidPort,
                    n.span,
                    format!("invalid port {}", n.value),
                )
                .label("ports go from 1 to 65535");
            None
        }
    }
}

/// An integer in `min..=max`, reported as `value-out-of-range` otherwise.
pub(crate) fn bounded(
    diags: &mut Diagnostics,
    value: Spanned<i128>,
    what: &str,
    min: i128,
    max: i128,
) -> Option<Spanned<i128>> {
    if value.value < min || value.value > max {
        let range = if max == i128::from(u32::MAX) {
            format!("at least {min}")
        } else {
            format!("from {min} to {max}")
        };
        diags
            .error(
                Code::ValueOutOfRange,
                value.span,
                format!("{what} is out of range"),
            )
            .label(format!("must be {range}"));
        return None;
    }
    Some(value)
}

/// One of a fixed set of strings.
pub(crate) fn choice<T: Copy>(
    diags: &mut Diagnostics,
    value: Value<'_>,
    what: &str,
    choices: &[(&str, T)],
) -> Option<Spanned<T>> {
    let text = value.string(diags, what)?;
    if let Some((_, v)) = choices.iter().find(|(name, _)| *name == text.value) {
        return Some(Spanned::new(*v, text.span));
    }
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    let list = names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    diags
        .error(
            Code::InvalidChoice,
            text.span,
            format!("invalid {what} `{}`", text.value),
        )
        .label(format!("expected one of {list}"))
        .maybe_help(did_you_mean(&text.value, names.iter().copied()));
    None
}

#[cfg(test)]
mod tests {
    use crate::spec::{Code, Options, RealFs, load_source};

    fn first(text: &str) -> (Code, String, Option<String>) {
        let loaded = load_source("kiln.kdl", None, text, &RealFs, &Options::default());
        let d = loaded.diagnostics.first().expect("a diagnostic");
        (d.code, d.message.clone(), d.help.clone())
    }

    #[test]
    fn a_subnet_needs_its_prefix_length() {
        let (code, _, help) = first("network \"n\" subnet=\"10.89.0.0\"\n");
        assert_eq!(code, Code::InvalidSubnet);
        assert_eq!(
            help.as_deref(),
            Some("write the subnet in CIDR form, e.g. `\"10.89.0.0/24\"`")
        );
    }

    #[test]
    fn a_signal_number_gets_no_name_guess() {
        let text =
            "image \"b\" { from \"scratch\"; }\ncontainer \"w\" image=\"b\" { stop-signal 99; }\n";
        let (code, _, help) = first(text);
        assert_eq!(code, Code::InvalidSignal);
        assert!(!help.unwrap_or_default().contains("did you mean"));
    }

    #[test]
    fn a_plain_number_is_shown_with_its_unit() {
        let text = "image \"b\" { from \"scratch\"; }\ncontainer \"a\" image=\"b\"\ncontainer \"c\" image=\"b\"\nlink \"a:eth1\" \"c:eth1\" { impair loss=\"0.5\"; }\n";
        assert_eq!(first(text).2.as_deref(), Some("write `\"0.5%\"`"));
    }
}
