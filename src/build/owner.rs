//! Who owns what a build step creates for the image's user (`workdir` as `USER 1000`), with
//! BuildKit's rules for the owner of files a step makes (its `chown` of a file operation),
//! read from the `/etc/passwd` and `/etc/group` of the image below the step:
//!
//! - `user "UID"`: UID, and the group with the same number (not the account's primary
//!   group: BuildKit and Buildah both do this);
//! - `user "NAME"`: the account's uid and primary gid from `/etc/passwd`;
//! - `user "U:G"`: the group as given, a number or a name from `/etc/group`.
//!
//! A name the image does not know is an error (BuildKit silently falls back to root there;
//! kiln says so instead, as it does for `run`).

use crate::layer::ImageIndex;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum OwnerError {
    #[error("user `{name}` is not in the image's /etc/passwd")]
    #[diagnostic(help("use a numeric id (`user \"1000\"`) or create the user in an earlier step"))]
    UnknownUser { name: String },
    #[error("group `{name}` is not in the image's /etc/group")]
    #[diagnostic(help("use a numeric id (`user \"1000:1000\"`) or create the group first"))]
    UnknownGroup { name: String },
}

/// The file `path` of the image, symbolic links followed inside it, if the index kept it.
fn image_file<'a>(image: &'a ImageIndex, path: &str) -> &'a str {
    image
        .resolve(path, true)
        .ok()
        .and_then(|real| image.captured(&real))
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .unwrap_or("")
}

/// The uid and gid that own what a step makes when the image's user is `user` (empty: root).
pub(crate) fn owner_ids(user: &str, image: &ImageIndex) -> Result<(u32, u32), OwnerError> {
    let (name, group) = match user.split_once(':') {
        Some((name, group)) => (name, Some(group)),
        None => (user, None),
    };
    let (uid, mut gid) = if name.is_empty() {
        (0, 0)
    } else if let Ok(uid) = name.parse::<u32>() {
        (uid, uid)
    } else {
        image_file(image, "etc/passwd")
            .lines()
            .map(|line| line.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 4 && f[0] == name)
            .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .or((name == "root").then_some((0, 0)))
            .ok_or_else(|| OwnerError::UnknownUser {
                name: name.to_string(),
            })?
    };
    match group {
        None | Some("") => {}
        Some(group) => {
            gid = match group.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => image_file(image, "etc/group")
                    .lines()
                    .map(|line| line.split(':').collect::<Vec<_>>())
                    .find(|f| f.len() >= 3 && f[0] == group)
                    .and_then(|f| f[2].parse().ok())
                    .or((group == "root").then_some(0))
                    .ok_or_else(|| OwnerError::UnknownGroup {
                        name: group.to_string(),
                    })?,
            };
        }
    }
    Ok((uid, gid))
}
