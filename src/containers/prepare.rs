//! What the foreground and detached paths share before a container starts: image → unpacked
//! layer stack → OCI spec → record → the container's files (`config.json`, `launch.json`,
//! upper and scratch directories) → its cgroup. Everything that can be refused is refused
//! before anything is created. It does not start the container.

use std::path::{Path, PathBuf};

use super::health::HealthCheck;
use super::lifecycle::{Launch, RunRequest, layout};
use super::{ContainerError, io_err};
use crate::image::StoredImage;
use crate::runtime::RootfsLayout;
use crate::runtime::cgroup::Limits;
use crate::runtime::spec::{NetworkMode, container_spec, to_json};
use crate::state::{ContainerId, ContainerState, Record, Records, generate_name};
use crate::store::Store;
use crate::timestamp::now;

/// A container whose record and files exist, ready to start.
pub(crate) struct Prepared {
    pub records: Records,
    pub record: Record,
    pub dir: PathBuf,
    pub spec: oci_spec::runtime::Spec,
    pub launch: Launch,
}

impl Prepared {
    pub(crate) fn layout(&self) -> RootfsLayout {
        layout(&self.dir, &self.launch)
    }
}

/// Checks the request, unpacks the image's layers, and writes the record and files.
pub(crate) fn prepare(
    store: &Store,
    state_root: &Path,
    request: &RunRequest,
) -> Result<Prepared, ContainerError> {
    prepare_with(store, state_root, request, None)
}

/// [`prepare`] of a container with a health check (its supervisor runs it).
pub(crate) fn prepare_with(
    store: &Store,
    state_root: &Path,
    request: &RunRequest,
    health: Option<HealthCheck>,
) -> Result<Prepared, ContainerError> {
    let image = StoredImage::load(store, &request.image)?;
    let limits = Limits {
        memory: request.options.memory,
        cpus: request.options.cpus,
        pids: request
            .options
            .pids_limit
            .and_then(|p| u64::try_from(p).ok()),
    };
    limits.validate()?;
    if let Some(name) = &request.name {
        crate::state::validate_name(name)?;
    }
    let records = Records::open(state_root)?;
    let mut stack = Vec::new();
    for (layer, diff_id) in image
        .manifest
        .layers
        .iter()
        .zip(&image.config.rootfs.diff_ids)
    {
        let diff_id = diff_id.parse().map_err(|_| ContainerError::Io {
            path: store.blob_path(&image.manifest.config.digest),
            source: std::io::Error::other(format!("bad diff_id `{diff_id}`")),
        })?;
        stack.push((layer.clone(), diff_id));
    }
    let lower_dirs = crate::build::unpack_stack(store, state_root, &stack)
        .map_err(|e| ContainerError::Layers(Box::new(e)))?;
    let id = ContainerId::generate().map_err(io_err(Path::new("/dev/urandom")))?;
    let mut options = request.options.clone();
    if options.hostname.is_none() {
        options.hostname = Some(id.short().to_string());
    }
    let name = request.name.clone().unwrap_or_else(|| generate_name(&id));
    let mut publish = request.publish.clone();
    if request.publish_all {
        super::network::publish_exposed(image.config.config.exposed_ports.keys(), &mut publish);
    }
    if !publish.is_empty() && request.networks.is_empty() {
        return Err(ContainerError::PublishWithoutNetwork);
    }
    if !request.networks.is_empty() && options.network == NetworkMode::Host {
        return Err(ContainerError::NetworkModeConflict {
            network: "host".into(),
        });
    }
    super::network::check_ports(&mut publish)?;
    let net_root = request.net_root.as_deref().unwrap_or(state_root);
    let first_network = match request.networks.first() {
        Some(first) if !options.etc.dns.is_empty() => {
            crate::net::records::NetworkRecords::open(net_root)
                .ok()
                .and_then(|records| records.find(&first.network).ok().flatten())
        }
        _ => None,
    };
    super::etc_files::check(
        &options.etc,
        !request.networks.is_empty(),
        first_network.as_ref().map(|n| (n.name.as_str(), n.egress)),
    )?;
    let mut names = vec![name.clone()];
    names.extend(options.hostname.clone().filter(|h| *h != name));
    let search = request.member.as_ref().map(|m| m.project.as_str());
    let (interfaces, etc_volumes) =
        super::network::reserve(net_root, id.as_str(), &names, search, &request.networks)?;
    let release = |err: ContainerError| {
        crate::net::attach::release(net_root, id.as_str(), &interfaces);
        err
    };
    // The image's VOLUMEs the container's own mounts leave free: anonymous volumes.
    let taken: Vec<&str> = request
        .volumes
        .iter()
        .map(|v| v.destination.as_str())
        .chain(options.volumes.iter().map(|v| v.destination.as_str()))
        .chain(options.tmpfs.iter().map(|t| t.destination.as_str()))
        .collect();
    // A project's container keeps them in the project's scope: `kiln down -v` takes them.
    let project = request.member.as_ref().map(|m| m.project.clone());
    let mut volumes = request.volumes.clone();
    volumes.extend(
        super::mounts::image_volumes(image.config.config.volumes.keys(), &taken)
            .map_err(release)?
            .into_iter()
            .map(|v| super::NamedVolume {
                project: project.clone(),
                ..v
            }),
    );
    let (named, volume_references) = super::mounts::attach_volumes(
        store,
        state_root,
        &image.manifest.layers,
        &lower_dirs,
        &volumes,
    )
    .map_err(release)?;
    options.volumes.extend(named);
    // Docker's order: a mount goes after the ones it is inside of (fewer components first).
    options
        .volumes
        .sort_by_key(|v| v.destination.split('/').filter(|p| !p.is_empty()).count());
    let hostname = options.hostname.clone().unwrap_or_default();
    let etc_volumes = super::etc_files::write(
        net_root,
        id.as_str(),
        &options.etc,
        &interfaces,
        &hostname,
        etc_volumes,
    )
    .map_err(release)?;
    options.volumes.extend(etc_volumes);
    let roots: Vec<&Path> = lower_dirs.iter().map(PathBuf::as_path).collect();
    let spec =
        container_spec(&image.config.config, &options, &roots).map_err(|e| release(e.into()))?;
    let record = Record {
        id: id.clone(),
        name,
        image: request.image.clone(),
        image_digest: image.descriptor.digest.to_string(),
        created: now(),
        command: spec
            .process()
            .as_ref()
            .and_then(|p| p.args().clone())
            .unwrap_or_default(),
        restart: request.restart.to_string(),
        state: ContainerState::default(),
        member: request.member.clone(),
        // The image's labels, the container's own over them (Docker's merge).
        labels: image
            .config
            .config
            .labels
            .clone()
            .into_iter()
            .chain(request.labels.clone())
            .collect(),
        volumes: volume_references,
    };
    records.create(&record).map_err(|e| release(e.into()))?;
    let dir = records.dir(&id);
    let launch = Launch {
        lower_dirs,
        memory: limits.memory,
        cpus: limits.cpus,
        pids: limits.pids,
        remove: request.remove,
        health,
        interfaces: interfaces.clone(),
        publish,
        log: request.log,
        net_root: request.net_root.clone(),
    };
    let prepared = Prepared {
        records,
        record,
        dir,
        spec,
        launch,
    };
    if let Err(err) = write_files(&prepared) {
        let _ = prepared.records.remove(&prepared.record);
        return Err(release(err));
    }
    Ok(prepared)
}

fn write_files(prepared: &Prepared) -> Result<(), ContainerError> {
    let dir = &prepared.dir;
    let config = dir.join("config.json");
    crate::atomic_file::write_durably(&config, &to_json(&prepared.spec))
        .map_err(io_err(&config))?;
    let launch = dir.join("launch.json");
    let bytes = serde_json::to_vec_pretty(&prepared.launch).expect("launch serializes");
    crate::atomic_file::write_durably(&launch, &bytes).map_err(io_err(&launch))?;
    for d in [dir.join("upper"), dir.join("scratch")] {
        std::fs::create_dir_all(&d).map_err(io_err(&d))?;
    }
    Ok(())
}
