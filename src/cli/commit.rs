//! `kiln commit`: a container's changes as a new image; prints its manifest digest.

use super::args::{Cli, CommitArgs, CompressionArg};
use super::output::line;
use crate::containers::{self, CommitRequest};
use crate::layer::Compression;

pub(super) fn run(cli: &Cli, args: &CommitArgs) -> Result<u8, crate::Error> {
    let store = super::open_store(cli)?;
    let container = super::container_ids(cli, std::slice::from_ref(&args.container))
        .map_err(crate::containers::ContainerError::from)?
        .remove(0);
    let request = CommitRequest {
        container,
        image: args.image.clone(),
        message: args.message.clone(),
        author: args.author.clone(),
        changes: args.changes.clone(),
        compression: match args.compression {
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::None => Compression::None,
        },
        source_date_epoch: super::build::source_date_epoch()?,
    };
    let committed = containers::commit(&store, &super::state_root(cli), &request)?;
    line(&committed.image.digest)?;
    Ok(0)
}
