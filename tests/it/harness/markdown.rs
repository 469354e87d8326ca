//! Fenced code blocks of the book's Markdown (and README.md), read as data.

use std::path::{Path, PathBuf};

use super::files::repo;

/// One fenced block.
pub struct Block {
    /// The Markdown file.
    pub file: PathBuf,
    /// The line of the opening fence (1-based).
    pub line: usize,
    /// The info string after the fence: `kdl,bad`, `console`, …
    pub info: String,
    /// Its lines, without the fences and without the fence's indentation.
    pub text: String,
    /// The HTML comments on the lines right above the opening fence, without `<!--`/`-->`
    /// (`file: /tmp/x/kiln.kdl`, `unchecked: why`): directions for the tests that read
    /// the block, invisible in the book.
    pub directives: Vec<String>,
}

impl Block {
    /// The language: the info string up to the first comma.
    pub fn language(&self) -> &str {
        self.info.split(',').next().unwrap_or_default()
    }

    /// Whether the info string carries `attribute` (`bad` in `kdl,bad`).
    pub fn has(&self, attribute: &str) -> bool {
        self.info.split(',').skip(1).any(|a| a.trim() == attribute)
    }

    /// `book/src/FILE.md:LINE`, for messages.
    pub fn place(&self) -> String {
        format!(
            "{}:{}",
            self.file
                .strip_prefix(repo())
                .unwrap_or(&self.file)
                .display(),
            self.line
        )
    }
}

/// Every fenced block of `file`, in order.
pub fn blocks(file: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut current: Option<(usize, usize, String, String)> = None;
    let mut directives = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut current {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    directives = comments_above(&lines[..i]);
                    current = Some((i + 1, indent, info.trim().to_string(), String::new()));
                }
            }
            Some((start, fence_indent, info, code)) => {
                if trimmed.starts_with("```") {
                    blocks.push(Block {
                        file: file.to_path_buf(),
                        line: *start,
                        info: std::mem::take(info),
                        text: std::mem::take(code),
                        directives: std::mem::take(&mut directives),
                    });
                    current = None;
                } else {
                    let cut = indent.min(*fence_indent);
                    code.push_str(&line[cut..]);
                    code.push('\n');
                }
            }
        }
    }
    blocks
}

/// The one-line HTML comments right above the end of `lines`, in order.
fn comments_above(lines: &[&str]) -> Vec<String> {
    let mut comments: Vec<String> = lines
        .iter()
        .rev()
        .map_while(|l| {
            l.trim()
                .strip_prefix("<!--")
                .and_then(|c| c.strip_suffix("-->"))
                .map(|c| c.trim().to_string())
        })
        .collect();
    comments.reverse();
    comments
}

/// The book's pages (`book/src/**/*.md`), sorted.
pub fn book_pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("book/src readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut pages = Vec::new();
    walk(&repo().join("book/src"), &mut pages);
    pages.sort();
    pages
}
