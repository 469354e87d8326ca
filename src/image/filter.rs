//! `kiln images --filter KEY=VALUE`, with Docker's keys: `reference=` (a glob over the
//! name, `web*`, `team/*:1`), `label=KEY[=VALUE]` and `dangling=`. Values of one key are
//! alternatives; different keys, and every label, must all match.
//!
//! kiln lists named images only: an image whose name moved on is garbage for `kiln gc`
//! (`kiln system prune`), never a `<none>` row, so `dangling=true` matches no listed image.
//! It decides matches and reads nothing.

use super::{ImageError, StoredImage};

/// The parsed `--filter` flags of `kiln images`.
#[derive(Debug, Default)]
pub struct ImageFilter {
    references: Vec<String>,
    labels: Vec<(String, Option<String>)>,
    dangling: Option<bool>,
}

impl ImageFilter {
    pub fn parse(filters: &[String]) -> Result<ImageFilter, ImageError> {
        let mut filter = ImageFilter::default();
        for text in filters {
            let bad = |reason: String| ImageError::BadFilter {
                filter: text.clone(),
                reason,
            };
            let Some((key, value)) = text.split_once('=') else {
                return Err(bad("expected KEY=VALUE".into()));
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "reference" => filter.references.push(value.to_string()),
                "label" => filter.labels.push(match value.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (value.to_string(), None),
                }),
                "dangling" => {
                    filter.dangling = Some(match value.to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad("dangling is true or false".into())),
                    })
                }
                _ => return Err(bad(format!("unknown filter key `{key}`"))),
            }
        }
        Ok(filter)
    }

    /// Whether the image listed under `name` passes every filter.
    pub fn matches(&self, name: &str, image: &StoredImage) -> bool {
        let labels = &image.config.config.labels;
        // Every listed image has a name: none is dangling.
        self.dangling != Some(true)
            && (self.references.is_empty()
                || self.references.iter().any(|pattern| {
                    glob(pattern, name)
                        || name
                            .rsplit_once(':')
                            .is_some_and(|(repo, _)| !repo.contains('@') && glob(pattern, repo))
                }))
            && self.labels.iter().all(|(k, v)| match labels.get(k) {
                Some(actual) => v.as_ref().is_none_or(|v| v == actual),
                None => false,
            })
    }
}

/// Go's `path.Match`, as Docker's reference filter uses it: `*` is any run of characters
/// but `/`, `?` one such character, everything else itself.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // The classic two-pointer match with one backtracking point per `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some('?') if t[ti] != '/' => {
                pi += 1;
                ti += 1;
            }
            Some(c) if *c != '*' && *c != '?' && *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                // The star takes one more character, never a `/`.
                Some((sp, st)) if t[st] != '/' => {
                    star = Some((sp, st + 1));
                    pi = sp + 1;
                    ti = st + 1;
                }
                _ => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs_match_as_go_path_match() {
        assert!(glob("web*", "web:1"));
        assert!(glob("web", "web"));
        assert!(!glob("web", "web2"));
        assert!(glob("team/*", "team/app"));
        assert!(!glob("*", "team/app"));
        assert!(glob("*/*:1", "team/app:1"));
        assert!(glob("w?b", "web"));
        assert!(!glob("w?b", "w/b"));
        assert!(glob("*a*b", "xaxxb"));
        assert!(!glob("*a*b", "xaxxbc"));
    }
}
