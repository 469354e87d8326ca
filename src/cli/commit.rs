//! `kiln commit`: a container's changes as a new image; prints its manifest digest.

use super::args::{Cli, CommitArgs, CompressionArg};
use super::output::line;
use crate::containers::{self, CommitRequest};
use crate::layer::Compression;

pub(super) fn run(cli: &Cli, args: &CommitArgs) -> Result<u8, crate::Error> {
    let store = super::open_store(cli)?;
    let request = CommitRequest {
        container: args.container.clone(),
        image: args.image.clone(),
        message: args.message.clone(),
        author: args.author.clone(),
        changes: args.changes.clone(),
        compression: match args.compression {
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::None => Compression::None,
        },
        source_date_epoch: source_date_epoch()?,
    };
    let committed = containers::commit(&store, &super::state_root(cli), &request)?;
    line(&committed.image.digest)?;
    Ok(0)
}

/// `SOURCE_DATE_EPOCH` from the environment, 0 when unset — as `kiln build` reads it.
// TODO(lead): one copy with cli/build.rs's `source_date_epoch` (outside this branch's files).
fn source_date_epoch() -> Result<u64, crate::Error> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(_) => Ok(0),
        Ok(text) if text.trim().is_empty() => Ok(0),
        Ok(text) => text.trim().parse().map_err(|_| crate::Error::Failed {
            message: format!("SOURCE_DATE_EPOCH `{text}` is not a number of seconds"),
            help: Some("set it to a Unix time, e.g. `git log -1 --format=%ct`".into()),
        }),
    }
}
