//! Cache keys: blake3 over a canonical encoding of a step's recipe — its parent's key, what
//! the step does, the effective config and the hash of every input file. The recipe is kept
//! as labelled items so `kiln explain` can name the one that changed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A 32-byte blake3 cache key, printed as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Key(pub [u8; 32]);

impl Key {
    pub fn hex(&self) -> String {
        blake3::Hash::from(self.0).to_hex().to_string()
    }

    /// A key for a fixed string (used for bases such as `scratch`).
    pub fn of_str(text: &str) -> Key {
        Key(*blake3::hash(text.as_bytes()).as_bytes())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", &self.hex()[..12])
    }
}

impl From<Key> for String {
    fn from(key: Key) -> String {
        key.hex()
    }
}

impl TryFrom<String> for Key {
    type Error = String;
    fn try_from(text: String) -> Result<Key, String> {
        if text.len() != 64 {
            return Err(format!("a key has 64 hex digits, not `{text}`"));
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                .map_err(|_| format!("`{text}` is not hex"))?;
        }
        Ok(Key(bytes))
    }
}

/// One labelled input of a step: `("arg", "sh -c …")`, `("env", "PORT=8080")`,
/// `("file /srv/www/index.html", "<blake3> 0644 0:0")`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecipeItem {
    pub label: String,
    pub value: String,
}

impl RecipeItem {
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> RecipeItem {
        RecipeItem {
            label: label.into(),
            value: value.into(),
        }
    }
}

/// Everything a step's result depends on, in a fixed order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipe {
    pub items: Vec<RecipeItem>,
}

/// How one recipe differs from an earlier one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Changed {
        label: String,
        before: String,
        after: String,
    },
    Added {
        label: String,
        value: String,
    },
    Removed {
        label: String,
        value: String,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Changed {
                label,
                before,
                after,
            } => write!(f, "{label} changed: {before} → {after}"),
            Change::Added { label, value } => write!(f, "{label} is new: {value}"),
            Change::Removed { label, value } => write!(f, "{label} was removed (was {value})"),
        }
    }
}

impl Recipe {
    pub fn push(&mut self, label: impl Into<String>, value: impl Into<String>) {
        self.items.push(RecipeItem::new(label, value));
    }

    /// blake3 over length-prefixed labels and values: no two recipes share an encoding.
    pub fn key(&self) -> Key {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"kiln-recipe-v1\0");
        for item in &self.items {
            for part in [&item.label, &item.value] {
                hasher.update(&(part.len() as u64).to_le_bytes());
                hasher.update(part.as_bytes());
            }
        }
        Key(*hasher.finalize().as_bytes())
    }

    /// What changed from `before` to `self`, item by item; labels may repeat (several `env`
    /// items), so items are matched by label and position among equal labels.
    pub fn changes_since(&self, before: &Recipe) -> Vec<Change> {
        use std::collections::BTreeMap;
        fn by_label(recipe: &Recipe) -> BTreeMap<(String, usize), String> {
            let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
            recipe
                .items
                .iter()
                .map(|item| {
                    let n = seen.entry(&item.label).or_default();
                    *n += 1;
                    ((item.label.clone(), *n), item.value.clone())
                })
                .collect()
        }
        let old = by_label(before);
        let new = by_label(self);
        let mut changes = Vec::new();
        // Report in the order of the new recipe, then what disappeared.
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for item in &self.items {
            let n = seen.entry(&item.label).or_default();
            *n += 1;
            match old.get(&(item.label.clone(), *n)) {
                Some(value) if *value == item.value => {}
                Some(value) => changes.push(Change::Changed {
                    label: item.label.clone(),
                    before: value.clone(),
                    after: item.value.clone(),
                }),
                None => changes.push(Change::Added {
                    label: item.label.clone(),
                    value: item.value.clone(),
                }),
            }
        }
        for ((label, n), value) in &old {
            if !new.contains_key(&(label.clone(), *n)) {
                changes.push(Change::Removed {
                    label: label.clone(),
                    value: value.clone(),
                });
            }
        }
        changes
    }
}
