//! `kiln bundle IMAGE DIR`: the OCI bundle kiln would run — `DIR/config.json` and the
//! image's layers flattened into `DIR/rootfs` — for `runc run` or any OCI runtime.

use std::path::Path;

use super::{ContainerError, io_err};
use crate::image::StoredImage;
use crate::runtime::spec::{RunOptions, container_spec};
use crate::store::{Descriptor, Store};

pub fn write_bundle(
    store: &Store,
    image: &str,
    options: &RunOptions,
    dir: &Path,
) -> Result<(), ContainerError> {
    let stored = StoredImage::load(store, image)?;
    // A bundle kiln creates is private (0700), like the state root: the rootfs may hold
    // the image's device nodes and setuid programs, which no other user may reach by path.
    // (`rootfs` itself keeps the image's mode: it is the container's `/`.)
    if !dir.exists() {
        crate::store::make_private(dir).map_err(io_err(dir))?;
    }
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).map_err(io_err(&rootfs))?;
    if std::fs::read_dir(&rootfs)
        .map_err(io_err(&rootfs))?
        .next()
        .is_some()
    {
        return Err(ContainerError::Io {
            path: rootfs,
            source: std::io::Error::other("the bundle's rootfs is not empty"),
        });
    }
    let layers: Vec<Descriptor> = stored.manifest.layers.clone();
    let written = (|| {
        crate::build::flatten(store, &layers, &rootfs)
            .map_err(|e| ContainerError::Layers(Box::new(e)))?;
        let spec = container_spec(&stored.config.config, options, &[rootfs.as_path()])?;
        crate::runtime::spec::write_bundle(dir, &spec, &rootfs)?;
        Ok(())
    })();
    if written.is_err() {
        // Nothing half-written: the rootfs was empty (checked above), so it goes entirely.
        let _ = std::fs::remove_dir_all(&rootfs);
    }
    written
}
