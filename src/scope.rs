//! Projects as namespaces: how kiln names what a project owns, and how a name on the command
//! line finds it.
//!
//! Two projects may both declare a container `web`, a network `front` and an image `web`.
//! Each such thing has a *reference*: `PROJECT/NAME` for a project's (`shop/web`), the bare
//! name for one that belongs to no project (`kiln run --name web`, `kiln network create
//! front`, an imported or pulled image). The reference is what kiln stores and what the
//! command line takes; inside a project (its kiln.kdl, its DNS, its test blocks) the short
//! names stay as written. `/` can never be part of a container or network name, so a
//! reference is never ambiguous about where the project ends.
//!
//! A bare name on the command line is resolved by [`resolve`], in this order:
//! 1. the current project's (the project of `./kiln.kdl`, or of `-f FILE`), if it has one;
//! 2. the one thing whose whole reference it is (no project);
//! 3. the one project's that has it.
//!
//! When several projects have it (and neither rule above applies) it is an error that
//! lists them. Container ids, image digests and registry references are the stores'
//! business: they ask here only about names.
//!
//! Owns the spelling (joining, splitting, the file-name form of a reference) and the
//! resolution rule. It knows no store: each store (container records, network records, the
//! image store) hands its candidates in. Pure: no I/O.

use std::fmt;

/// Between a project and a name: `shop/web`.
pub const SEPARATOR: char = '/';

/// What stands for [`SEPARATOR`] in file names (`names/shop+web`, `networks/shop+front.json`):
/// a character no project, container or network name has.
const FILE_SEPARATOR: char = '+';

/// The reference of `name` in `project`: `shop/web`, or `web` without a project.
pub fn qualify(project: Option<&str>, name: &str) -> String {
    match project {
        Some(project) => format!("{project}{SEPARATOR}{name}"),
        None => name.to_string(),
    }
}

/// A reference's project (if it has one) and name: `shop/web` → `(Some("shop"), "web")`.
pub fn split(reference: &str) -> (Option<&str>, &str) {
    match reference.split_once(SEPARATOR) {
        Some((project, name)) => (Some(project), name),
        None => (None, reference),
    }
}

/// The name of the file a reference is stored under (`/` cannot be in a file name).
pub fn file_key(reference: &str) -> String {
    reference.replace(SEPARATOR, &FILE_SEPARATOR.to_string())
}

/// The reference a [`file_key`] stands for.
pub fn from_file_key(key: &str) -> String {
    key.replace(FILE_SEPARATOR, &SEPARATOR.to_string())
}

/// One thing a store has under a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<T> {
    pub project: Option<String>,
    pub name: String,
    pub item: T,
}

impl<T> Candidate<T> {
    /// A candidate from its reference.
    pub fn from_reference(reference: &str, item: T) -> Candidate<T> {
        let (project, name) = split(reference);
        Candidate {
            project: project.map(str::to_string),
            name: name.to_string(),
            item,
        }
    }

    /// Its reference: `shop/web` or `web`.
    pub fn reference(&self) -> String {
        qualify(self.project.as_deref(), &self.name)
    }
}

/// What kind of thing is looked up, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Container,
    Network,
    Image,
    Volume,
    /// A link's end, `container:interface`.
    Link,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Container => "container",
            Kind::Network => "network",
            Kind::Image => "image",
            Kind::Volume => "volume",
            Kind::Link => "link end",
        })
    }
}

/// A bare name that several projects have, and no rule picks one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("`{name}` is ambiguous: {} {kind}s have this name ({})", candidates.len(), candidates.join(", "))]
#[diagnostic(
    code(kiln::ambiguous_name),
    help(
        "name one as PROJECT/NAME, e.g. `{}`, or run kiln in that project's directory",
        candidates[0]
    )
)]
pub struct Ambiguous {
    pub kind: Kind,
    pub name: String,
    /// Their references, sorted.
    pub candidates: Vec<String>,
}

/// Finds what `reference` names among `candidates`, for a command run with `context` as
/// its current project (see the module's doc for the order). `Ok(None)`: nothing has that
/// name (the store may then try an id or a digest).
pub fn resolve<T>(
    kind: Kind,
    reference: &str,
    context: Option<&str>,
    candidates: impl IntoIterator<Item = Candidate<T>>,
) -> Result<Option<T>, Ambiguous> {
    let (project, name) = split(reference);
    let mut named: Vec<Candidate<T>> = candidates.into_iter().filter(|c| c.name == name).collect();
    if project.is_some() {
        return Ok(named
            .into_iter()
            .find(|c| c.project.as_deref() == project)
            .map(|c| c.item));
    }
    // The current project's, then the one of no project (its whole reference is the name).
    for wanted in [context, None] {
        if let Some(at) = named.iter().position(|c| c.project.as_deref() == wanted) {
            return Ok(Some(named.swap_remove(at).item));
        }
    }
    match named.len() {
        0 => Ok(None),
        1 => Ok(named.pop().map(|c| c.item)),
        _ => {
            let mut candidates: Vec<String> = named.iter().map(Candidate::reference).collect();
            candidates.sort();
            Err(Ambiguous {
                kind,
                name: name.to_string(),
                candidates,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(references: &[&str]) -> Vec<Candidate<String>> {
        references
            .iter()
            .map(|r| Candidate::from_reference(r, r.to_string()))
            .collect()
    }

    fn find(
        reference: &str,
        context: Option<&str>,
        have: &[&str],
    ) -> Result<Option<String>, Ambiguous> {
        resolve(Kind::Container, reference, context, candidates(have))
    }

    #[test]
    fn references_join_split_and_become_file_names() {
        assert_eq!(qualify(Some("shop"), "web"), "shop/web");
        assert_eq!(qualify(None, "web"), "web");
        assert_eq!(split("shop/web"), (Some("shop"), "web"));
        assert_eq!(split("web"), (None, "web"));
        assert_eq!(file_key("shop/web-1~previous"), "shop+web-1~previous");
        assert_eq!(from_file_key("shop+web"), "shop/web");
        assert_eq!(from_file_key(&file_key("web")), "web");
    }

    #[test]
    fn a_qualified_reference_names_exactly_one_project() {
        let have = ["shop/web", "blog/web", "web"];
        assert_eq!(
            find("shop/web", None, &have).unwrap().as_deref(),
            Some("shop/web")
        );
        assert_eq!(
            find("blog/web", Some("shop"), &have).unwrap().as_deref(),
            Some("blog/web")
        );
        assert_eq!(find("wiki/web", None, &have).unwrap(), None);
    }

    #[test]
    fn a_bare_name_prefers_the_current_project_then_no_project_then_a_unique_one() {
        let have = ["shop/web", "blog/web", "web"];
        assert_eq!(
            find("web", Some("blog"), &have).unwrap().as_deref(),
            Some("blog/web")
        );
        assert_eq!(find("web", None, &have).unwrap().as_deref(), Some("web"));
        assert_eq!(
            find("web", Some("wiki"), &have).unwrap().as_deref(),
            Some("web")
        );
        assert_eq!(
            find("db", None, &["shop/db", "web"]).unwrap().as_deref(),
            Some("shop/db")
        );
        assert_eq!(
            find("db", Some("blog"), &["shop/db"]).unwrap().as_deref(),
            Some("shop/db")
        );
        assert_eq!(find("db", None, &["shop/web"]).unwrap(), None);
    }

    #[test]
    fn a_bare_name_of_several_projects_is_an_error_listing_them() {
        let err = find("web", None, &["shop/web", "blog/web"]).unwrap_err();
        assert_eq!(err.candidates, ["blog/web", "shop/web"]);
        assert_eq!(
            err.to_string(),
            "`web` is ambiguous: 2 containers have this name (blog/web, shop/web)"
        );
        let help = miette::Diagnostic::help(&err).unwrap().to_string();
        assert!(help.contains("`blog/web`"), "{help}");
        assert!(find("web", Some("wiki"), &["shop/web", "blog/web"]).is_err());
    }
}
