//! The command's output as the parent sees it: the last bytes kept for error reports, and
//! complete lines handed to whoever shows progress. Bounded memory whatever the command
//! writes.

/// Longest pending line before it is handed on unfinished (a command printing megabytes
/// without a newline must not grow kiln's memory).
const MAX_LINE: usize = 64 * 1024;

/// Keeps the last `capacity` bytes of a stream and splits it into lines.
#[derive(Debug, Clone)]
pub struct OutputTail {
    capacity: usize,
    tail: Vec<u8>,
    line: Vec<u8>,
}

impl OutputTail {
    pub fn new(capacity: usize) -> OutputTail {
        OutputTail {
            capacity,
            tail: Vec::new(),
            line: Vec::new(),
        }
    }

    /// Takes the next chunk; calls `on_line` for each line it completes (without its `\n`).
    pub fn push(&mut self, chunk: &[u8], on_line: &mut dyn FnMut(&[u8])) {
        self.tail.extend_from_slice(chunk);
        // Trim in batches so a stream of small chunks costs amortised O(1) per byte.
        if self.tail.len() > 2 * self.capacity.max(1) {
            let excess = self.tail.len() - self.capacity;
            self.tail.drain(..excess);
        }
        let mut rest = chunk;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            if self.line.is_empty() {
                on_line(&rest[..newline]);
            } else {
                self.line.extend_from_slice(&rest[..newline]);
                on_line(&self.line);
                self.line.clear();
            }
            rest = &rest[newline + 1..];
        }
        self.line.extend_from_slice(rest);
        if self.line.len() >= MAX_LINE {
            on_line(&self.line);
            self.line.clear();
        }
    }

    /// Ends the stream: hands on an unfinished last line, returns the kept bytes.
    pub fn finish(mut self, on_line: &mut dyn FnMut(&[u8])) -> Vec<u8> {
        if !self.line.is_empty() {
            on_line(&self.line);
        }
        let excess = self.tail.len().saturating_sub(self.capacity);
        self.tail.drain(..excess);
        self.tail
    }
}
