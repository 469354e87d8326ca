//! Docker's env-file format (`docker run --env-file`, Compose's `env_file`), parsed: one
//! `KEY=VALUE` a line, taken literally (no quotes removed, no `$` expanded); a bare `KEY`
//! takes the caller's value and is left out when the caller has none; blank lines and
//! lines starting with `#` are skipped; leading whitespace is dropped. `spec` checks
//! kiln.kdl's `env-file`s with it and `cli` reads `--env-file` with it.
//!
//! Pure: the text and a lookup of the caller's environment come in.

/// A line Docker would refuse, with its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct EnvFileError {
    pub line: usize,
    pub reason: String,
}

/// The variables of `text`, in order; `lookup` gives the caller's value of a bare `KEY`.
pub fn parse(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, EnvFileError> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = if index == 0 {
            raw.trim_start_matches('\u{feff}')
        } else {
            raw
        };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: String| EnvFileError {
            line: index + 1,
            reason,
        };
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (line.trim_end(), None),
        };
        if key.is_empty() {
            return Err(bad("no variable name before `=`".into()));
        }
        if key.contains(char::is_whitespace) {
            return Err(bad(format!("variable `{key}` contains whitespace")));
        }
        if key.contains('\0') || value.is_some_and(|v| v.contains('\0')) {
            return Err(bad("a NUL byte".into()));
        }
        match value {
            Some(value) => out.push((key.to_string(), value.to_string())),
            None => {
                if let Some(value) = lookup(key) {
                    out.push((key.to_string(), value));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(key: &str) -> Option<String> {
        (key == "HOME").then(|| "/home/ada".to_string())
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dockers_format() {
        let text =
            "\u{feff}# comment\n\n  MODE=debug\nQUOTED=\"a b\"\nHOME\nUNSET\nEMPTY=\nURL=a=b\n";
        assert_eq!(
            parse(text, caller).unwrap(),
            pairs(&[
                ("MODE", "debug"),
                ("QUOTED", "\"a b\""),
                ("HOME", "/home/ada"),
                ("EMPTY", ""),
                ("URL", "a=b"),
            ])
        );
    }

    #[test]
    fn bad_lines_are_named_by_number() {
        assert_eq!(
            parse("A=1\n\nLEVEL = 3\n", caller).unwrap_err(),
            EnvFileError {
                line: 3,
                reason: "variable `LEVEL ` contains whitespace".into()
            }
        );
        assert_eq!(parse("=x", caller).unwrap_err().line, 1);
    }
}
