//! `kiln stats`: renders what `containers::stats` reads — a table (redrawn in place every
//! second on a terminal, appended otherwise) or JSON (one array per reading).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use super::args::{Cli, StatsArgs, StatsFormat};
use crate::containers::{self, ContainerStats, Sampler};

/// Between the two readings of `--no-stream` (CPU % needs two).
const SNAPSHOT_GAP: Duration = Duration::from_millis(300);
/// Between two refreshes of the stream.
const REFRESH: Duration = Duration::from_secs(1);
/// Moves the cursor home and clears the screen: the table is redrawn in place.
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";

pub(super) fn run(cli: &Cli, args: &StatsArgs) -> Result<u8, crate::Error> {
    let root = super::state_root(cli);
    let mut out = std::io::stdout();
    let containers = super::container_ids(cli, &args.containers)
        .map_err(crate::containers::ContainerError::from)?;
    if args.no_stream {
        let figures = containers::snapshot(&root, &containers, SNAPSHOT_GAP)?;
        return write(&mut out, &render(&figures, args.format)).map(|()| 0);
    }
    let mut sampler = Sampler::new(&root)?;
    // Containers named but unknown or stopped are an error now, not a silent empty table.
    let first = sampler.select(&containers, true)?;
    sampler.sample(&first)?;
    std::thread::sleep(SNAPSHOT_GAP);
    let redraw = args.format == StatsFormat::Table && out.is_terminal();
    loop {
        let shown = sampler.select(&containers, false)?;
        let figures = sampler.sample(&shown)?;
        let mut text = render(&figures, args.format);
        if redraw {
            text.insert_str(0, CLEAR_SCREEN);
        }
        write(&mut out, &text)?;
        std::thread::sleep(REFRESH);
    }
}

fn write(out: &mut std::io::Stdout, text: &str) -> Result<(), crate::Error> {
    let mut out = out.lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(crate::Error::Output)
}

/// One reading as text: the table with its header, or a JSON array on one line.
pub(super) fn render(figures: &[ContainerStats], format: StatsFormat) -> String {
    match format {
        StatsFormat::Json => {
            let mut text = serde_json::to_string(figures).expect("stats serialize");
            text.push('\n');
            text
        }
        StatsFormat::Table => {
            let mut rows = vec![
                [
                    "CONTAINER ID",
                    "NAME",
                    "CPU %",
                    "MEM USAGE / LIMIT",
                    "MEM %",
                    "NET I/O",
                    "BLOCK I/O",
                    "PIDS",
                ]
                .map(String::from)
                .to_vec(),
            ];
            for f in figures {
                rows.push(vec![
                    f.id.chars().take(12).collect(),
                    f.name.clone(),
                    format!("{:.2}%", f.cpu_percent),
                    format!(
                        "{} / {}",
                        binary_size(f.memory_usage),
                        binary_size(f.memory_limit)
                    ),
                    format!("{:.2}%", f.memory_percent),
                    format!("{} / {}", binary_size(f.net_rx), binary_size(f.net_tx)),
                    format!(
                        "{} / {}",
                        binary_size(f.block_read),
                        binary_size(f.block_write)
                    ),
                    match f.pids_limit {
                        Some(limit) => format!("{} / {limit}", f.pids),
                        None => f.pids.to_string(),
                    },
                ]);
            }
            columns(&rows)
        }
    }
}

/// Rows as left-aligned columns three spaces apart, each line ending in a newline.
fn columns(rows: &[Vec<String>]) -> String {
    let count = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..count)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|v| v.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, value) in row.iter().enumerate() {
            line.push_str(&format!("{value:<width$}   ", width = widths[c]));
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// `512B`, `1.5KiB`, `64MiB`: powers of 1024 with one decimal, `.0` left out.
pub(super) fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // Round first, so 1023.96KiB shows as 1MiB rather than 1024KiB.
    while (value * 10.0).round() / 10.0 >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let text = format!("{value:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests;
