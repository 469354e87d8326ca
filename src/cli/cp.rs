//! `kiln cp`: SRC and DEST read as Docker reads them (`CONTAINER:PATH`, a local path, `-`),
//! the container named resolved, the copy done by `containers::copy`.

use std::io::IsTerminal;

use super::args::{Cli, CpArgs};
use crate::containers::{self, ContainerError, CopyOptions, Side};
use crate::state::Records;

/// How Docker splits a cp argument: an absolute path, a path with no `:`, or one whose
/// part before the first `:` starts with `.` is local; otherwise `CONTAINER:PATH`.
fn split(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') {
        return None;
    }
    match arg.split_once(':') {
        Some((container, path)) if !container.starts_with('.') => Some((container, path)),
        _ => None,
    }
}

pub(super) fn run(cli: &Cli, args: &CpArgs) -> Result<u8, crate::Error> {
    let outcome = (|| {
        let records = Records::open(&super::state_root(cli)).map_err(ContainerError::from)?;
        let resolve =
            |arg: &str| -> Result<Option<(crate::state::Record, String)>, ContainerError> {
                match split(arg) {
                    Some((container, path)) => {
                        let record = super::find_container(&records, container)?;
                        Ok(Some((record, path.to_string())))
                    }
                    None => Ok(None),
                }
            };
        let (src, dest) = (resolve(&args.src)?, resolve(&args.dest)?);
        let options = CopyOptions {
            follow_link: args.follow_link,
            archive: args.archive,
        };
        // Checked before any container is touched.
        if src.is_none() && dest.is_none() {
            return Err(ContainerError::CopyWithoutContainer);
        }
        containers::copy(
            &records,
            side(&args.src, &src),
            side(&args.dest, &dest),
            options,
        )
    })();
    match outcome {
        Ok(copied) => {
            if !args.quiet && args.dest != "-" && std::io::stderr().is_terminal() {
                eprintln!(
                    "Successfully copied {} entries to {}",
                    copied.entries, args.dest
                );
            }
            Ok(0)
        }
        Err(err) => {
            eprintln!("{:?}", miette::Report::new(err));
            Ok(1)
        }
    }
}

/// One end of the copy: the container found, `-`, or a local path.
fn side<'a>(arg: &'a str, found: &'a Option<(crate::state::Record, String)>) -> Side<'a> {
    match found {
        Some((record, path)) => Side::Container { record, path },
        None if arg == "-" => Side::Stream,
        None => Side::Host(arg),
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn arguments_split_as_docker_splits_them() {
        assert_eq!(split("web:/etc/hosts"), Some(("web", "/etc/hosts")));
        assert_eq!(split("shop/web:etc"), Some(("shop/web", "etc")));
        assert_eq!(split("/tmp/a:b"), None);
        assert_eq!(split("./a:b"), None);
        assert_eq!(split("file"), None);
        assert_eq!(split("-"), None);
    }
}
