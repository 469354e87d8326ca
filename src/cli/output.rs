//! Small output helpers shared by commands: byte sizes, tables, JSON lines.

use std::io::Write;

/// `1.2 MB`-style sizes (decimal units, like `docker images`).
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Prints rows as left-aligned columns separated by three spaces.
pub(crate) fn table(rows: &[Vec<String>]) -> Result<(), crate::Error> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|v| v.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = std::io::stdout().lock();
    for row in rows {
        let mut line = String::new();
        for (c, value) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(value);
            } else {
                line.push_str(&format!("{value:<width$}   ", width = widths[c]));
            }
        }
        writeln!(out, "{}", line.trim_end()).map_err(crate::Error::Output)?;
    }
    Ok(())
}

/// Prints one JSON value on its own line.
pub(crate) fn json_line(value: &impl serde::Serialize) -> Result<(), crate::Error> {
    let text = serde_json::to_string(value).expect("output serializes");
    writeln!(std::io::stdout().lock(), "{text}").map_err(crate::Error::Output)
}

/// Prints a line of text.
pub(crate) fn line(text: impl std::fmt::Display) -> Result<(), crate::Error> {
    writeln!(std::io::stdout().lock(), "{text}").map_err(crate::Error::Output)
}
