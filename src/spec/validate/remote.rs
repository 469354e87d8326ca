//! Images from registries: what kiln.kdl names outside the project, checked against the
//! store and kiln.lock without touching the network.
//!
//! A registry reference (a name with `:`, `/` or `@`) must parse as one; one that is
//! neither in the store nor pinned in kiln.lock is a warning (the build will pull it); a
//! digest written in kiln.kdl must agree with the lock's pin of the same tag; a pin nothing
//! uses any more is a warning on its line of kiln.lock.

use std::collections::BTreeSet;

use super::Options;
use crate::reference::Reference;
use crate::spec::diag::{Code, Diagnostics};
use crate::spec::lock::{Lock, registry_names};
use crate::spec::model::Project;

pub(super) fn check(project: &Project, lock: &Lock, options: &Options, diags: &mut Diagnostics) {
    let mut used: BTreeSet<String> = BTreeSet::new();
    for name in registry_names(project) {
        if options.external_images.contains(&name.value) {
            // A local image of the store (imported, tagged) or a pulled one by its name.
            if let Ok(reference) = Reference::parse(&name.value)
                && reference.tag.is_some()
            {
                used.insert(reference.without_digest().to_string());
            }
            continue;
        }
        let reference = match Reference::parse(&name.value) {
            Ok(reference) => reference,
            Err(err) => {
                diags
                    .error(
                        Code::InvalidReference,
                        name.span,
                        format!("`{}` is not a valid image reference", name.value),
                    )
                    .label(err.reason)
                    .help("write it like `debian:12`, `localhost:5000/team/app:1` or `app@sha256:<64 hex>`");
                continue;
            }
        };
        let tagged = reference.without_digest();
        if reference.tag.is_some() {
            used.insert(tagged.to_string());
        }
        let pin = reference.tag.is_some().then(|| lock.get(&tagged)).flatten();
        if let (Some(written), Some(pin)) = (&reference.digest, pin)
            && *written != pin.digest.value
        {
            diags
                .error(
                    Code::LockMismatch,
                    name.span,
                    format!(
                        "kiln.kdl pins `{}` to {written}, kiln.lock to {}",
                        tagged.familiar(),
                        pin.digest.value
                    ),
                )
                .label("this digest")
                .related(pin.digest.span, "kiln.lock's pin")
                .help("`kiln lock` rewrites kiln.lock after kiln.kdl");
            continue;
        }
        let in_store = options.external_images.contains(&reference.familiar())
            || pin.is_some_and(|p| {
                options
                    .external_images
                    .contains(&reference.pinned(p.digest.value.clone()).familiar())
            });
        if in_store || (pin.is_some() && reference.digest.is_none()) {
            continue;
        }
        let why = if reference.digest.is_some() {
            "not in the store"
        } else {
            "neither in the store nor pinned in kiln.lock"
        };
        diags
            .warning(
                Code::UnpinnedImage,
                name.span,
                format!("image `{}` is {why}", name.value),
            )
            .label(format!(
                "`kiln build` will pull it from {}",
                reference.registry
            ))
            .help(format!(
                "`kiln pull {}` fetches it now; `kiln lock` pins it without pulling",
                name.value
            ));
    }
    for entry in &lock.entries {
        if !used.contains(&entry.reference.value) {
            diags
                .warning(
                    Code::LockMismatch,
                    entry.reference.span,
                    format!(
                        "kiln.lock pins `{}`, which kiln.kdl does not use",
                        entry.reference.value
                    ),
                )
                .help("`kiln lock` rewrites kiln.lock after kiln.kdl");
        }
    }
}
