//! Container ids (64 hex digits, shown as 12) and generated names.

use std::fmt;
use std::io::Read;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContainerId(String);

impl ContainerId {
    /// 32 random bytes from the kernel, as hex.
    pub fn generate() -> std::io::Result<ContainerId> {
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        Ok(ContainerId(
            bytes.iter().map(|b| format!("{b:02x}")).collect(),
        ))
    }

    pub fn parse(text: &str) -> Option<ContainerId> {
        (text.len() == 64
            && text
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
        .then(|| ContainerId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 digits, as `docker ps` shows.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const ADJECTIVES: &[&str] = &[
    "amber", "bold", "brisk", "calm", "clever", "crisp", "eager", "fond", "gentle", "glad", "keen",
    "lucid", "merry", "nimble", "quiet", "rapid", "sharp", "steady", "swift", "vivid",
];
const NOUNS: &[&str] = &[
    "anvil", "bellows", "brick", "cinder", "clay", "crucible", "ember", "flame", "flint", "forge",
    "furnace", "glaze", "hearth", "ingot", "kettle", "oven", "slag", "spark", "tile", "tongs",
];

/// `adjective_noun_xxxx` from the id: readable, and unique enough that a clash (which
/// `Records::create` refuses) is rare.
pub fn generate_name(id: &ContainerId) -> String {
    let byte = |i: usize| usize::from_str_radix(&id.as_str()[2 * i..2 * i + 2], 16).unwrap_or(0);
    format!(
        "{}_{}_{}",
        ADJECTIVES[byte(0) % ADJECTIVES.len()],
        NOUNS[byte(1) % NOUNS.len()],
        &id.as_str()[4..8]
    )
}
