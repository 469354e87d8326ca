//! `-u USER[:GROUP]` to numeric ids, the way Docker does it: numbers are taken as they are,
//! names are looked up in the container's /etc/passwd and /etc/group, and the user's
//! supplementary groups come from /etc/group.

use std::path::Path;

use super::SpecError;
use crate::runtime::UserIds;

/// The account behind `user`, and its home directory when /etc/passwd knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub ids: UserIds,
    pub home: Option<String>,
}

/// Resolves `user` (`name`, `uid`, `name:group`, `uid:gid`, …) against the first of `roots`
/// (top-most layer first, or a running container's `/proc/PID/root`) that has the file in
/// question, read inside that root (see [`crate::inroot`]).
pub fn resolve_user(user: &str, roots: &[&Path]) -> Result<ResolvedUser, SpecError> {
    let passwd = read_first(roots, "etc/passwd");
    let group_file = read_first(roots, "etc/group");
    resolve_user_in(user, &passwd, &group_file)
}

/// The largest /etc/passwd or /etc/group read (an image's file may be of any size).
const MAX_ACCOUNT_FILE: u64 = 16 << 20;

/// The file at `relative` in the first root that has it, resolved inside that root: an
/// image's `/etc/passwd -> /etc/shadow` link names the image's own file, never the host's.
fn read_first(roots: &[&Path], relative: &str) -> String {
    roots
        .iter()
        .find_map(|root| {
            let root = crate::inroot::Root::open(root).ok()?;
            let bytes = root.read(relative, MAX_ACCOUNT_FILE).ok()?;
            Some(String::from_utf8_lossy(&bytes).into_owned())
        })
        .unwrap_or_default()
}

/// [`resolve_user`] on the contents of /etc/passwd and /etc/group.
pub fn resolve_user_in(
    user: &str,
    passwd: &str,
    group_file: &str,
) -> Result<ResolvedUser, SpecError> {
    let unknown = || SpecError::UnknownUser {
        user: user.to_string(),
    };
    let (name, group) = match user.split_once(':') {
        Some((name, group)) => (name, Some(group)),
        None => (user, None),
    };
    if name.is_empty() {
        return Err(unknown());
    }
    let account = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && (f[0] == name || (name.parse::<u32>().is_ok() && f[2] == name)));
    let (uid, primary_gid, login, home) = match (name.parse::<u32>(), &account) {
        (Ok(uid), Some(f)) => (uid, f[3].parse().ok(), Some(f[0]), f.get(5).copied()),
        (Ok(uid), None) => (uid, None, None, None),
        (Err(_), Some(f)) => (
            f[2].parse().map_err(|_| unknown())?,
            f[3].parse().ok(),
            Some(f[0]),
            f.get(5).copied(),
        ),
        (Err(_), None) if name == "root" => (0, Some(0), Some("root"), Some("/root")),
        (Err(_), None) => return Err(unknown()),
    };
    let groups: Vec<Vec<&str>> = group_file
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    let gid = match group {
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|f| f[0] == group)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| SpecError::UnknownGroup {
                    group: group.to_string(),
                })?,
        },
        None => primary_gid.unwrap_or(0),
    };
    // Supplementary groups: those listing the user as a member (not with an explicit group,
    // as Docker does).
    let mut supplementary = Vec::new();
    if let (None, Some(login)) = (group, login) {
        for f in &groups {
            let members = f.get(3).copied().unwrap_or_default();
            if members.split(',').any(|m| m == login)
                && let Ok(id) = f[2].parse::<u32>()
                && id != gid
                && !supplementary.contains(&id)
            {
                supplementary.push(id);
            }
        }
    }
    Ok(ResolvedUser {
        ids: UserIds {
            uid,
            gid,
            groups: supplementary,
        },
        home: home.filter(|h| !h.is_empty()).map(str::to_string),
    })
}
