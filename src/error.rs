//! The crate's error type: one variant per module error, each keeping its cause as a
//! `#[source]`. Only the binary formats errors into reports.

/// Everything that can stop a kiln command (as opposed to diagnostics about kiln.kdl, which
/// are data: see [`crate::spec::Diagnostic`]).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Read(#[from] crate::spec::ReadError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] crate::store::StoreError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Image(#[from] crate::image::ImageError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Build(Box<crate::build::BuildError>),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(Box<crate::registry::RegistryError>),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Archive(#[from] crate::image::ArchiveError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Container(Box<crate::containers::ContainerError>),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Net(#[from] crate::net::NetError),

    /// A bare name on the command line that several projects have.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Ambiguous(#[from] crate::scope::Ambiguous),

    /// A command's own failure (e.g. `kiln rmi` of an unknown name).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Cli(#[from] crate::cli::CliError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Project(Box<crate::project::ProjectError>),

    #[error("cannot write to standard output")]
    Output(#[source] std::io::Error),
}

impl From<crate::build::BuildError> for Error {
    fn from(err: crate::build::BuildError) -> Error {
        Error::Build(Box::new(err))
    }
}

impl From<crate::project::ProjectError> for Error {
    fn from(err: crate::project::ProjectError) -> Error {
        Error::Project(Box::new(err))
    }
}

impl From<crate::containers::ContainerError> for Error {
    fn from(err: crate::containers::ContainerError) -> Error {
        Error::Container(Box::new(err))
    }
}

impl From<crate::registry::RegistryError> for Error {
    fn from(err: crate::registry::RegistryError) -> Error {
        Error::Registry(Box::new(err))
    }
}
