//! The arguments many commands share (the project file, the output format, layer
//! compression), in a file of their own so that `args` and `registry_args`, which both use
//! them, do not need each other.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// The project file, for the commands that read one.
#[derive(Debug, Args)]
pub struct ProjectArg {
    /// The project file.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "kiln.kdl"
    )]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    Zstd,
    Gzip,
    None,
}
