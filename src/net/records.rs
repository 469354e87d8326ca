//! Network records: what kiln knows about each network of a state root, one JSON file per
//! network under `$ROOT/net/networks/<key>.json`, and the lock `$ROOT/net/lock` that
//! serialises every change (creating, removing, attaching, detaching).
//!
//! A network is known by its reference ([`crate::scope`]): `front` for one of
//! `kiln network create`, `shop/front` for project `shop`'s (stored as `shop+front.json`),
//! so two projects' `front` are two networks.
//!
//! It owns the records and the addresses handed out (through [`super::ipam`]), and refuses
//! overlapping subnets. It does not create bridges or veths: the kernel side reads these
//! records and makes the kernel match them.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use super::ipam::{self, IpamError};

#[cfg(test)]
mod tests;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum NetRecordError {
    #[error("network state I/O failed at {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a valid network record", path.display())]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("no network named `{name}`")]
    #[diagnostic(help("`kiln network ls` lists the networks"))]
    NotFound { name: String },
    #[error("a network named `{name}` already exists")]
    #[diagnostic(help("remove it with `kiln network rm {name}`, or choose another name"))]
    Exists { name: String },
    #[error("invalid network name `{name}`")]
    #[diagnostic(help(
        "use letters, digits, `_`, `.` and `-`, starting with a letter or digit (at most 64)"
    ))]
    InvalidName { name: String },
    #[error("subnet {subnet} of network `{name}` overlaps {other_subnet} of network `{other}`")]
    #[diagnostic(help(
        "the networks of every project share one address space, as Docker's do: choose a subnet that does not overlap, or leave it out to get a free one; `kiln network ls` shows the subnets in use"
    ))]
    Overlap {
        name: String,
        subnet: IpNetwork,
        other: String,
        other_subnet: IpNetwork,
    },
    #[error("network `{name}` is in use by {members}")]
    #[diagnostic(help("stop or remove those containers first"))]
    InUse { name: String, members: String },
    #[error("{address} on network `{network}` is already used by `{holder}`")]
    #[diagnostic(help("choose another address, or leave ip= out to get one"))]
    AddressInUse {
        address: IpAddr,
        network: String,
        holder: String,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    AmbiguousName(#[from] crate::scope::Ambiguous),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> NetRecordError + '_ {
    move |source| NetRecordError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One network as kiln created it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// Its reference: `front`, or `shop/front` for a project's (see [`crate::scope`]).
    pub name: String,
    pub subnet: IpNetwork,
    /// The bridge's address, and the containers' default route unless `internal`.
    pub gateway: IpAddr,
    /// No route out of kiln's topology.
    pub internal: bool,
    /// Its containers reach the world outside the machine through its egress namespace
    /// (see `egress`), and its DNS forwards the names kiln does not know.
    #[serde(default)]
    pub egress: bool,
    /// The bridge device in kiln's network namespace.
    pub bridge: String,
    /// RFC 3339, UTC.
    pub created: String,
    /// The project that declared it; `None` for `kiln network create`.
    pub project: Option<String>,
    /// Sorted by container name.
    pub members: Vec<Member>,
    /// What makes it an overlay on this host; `None` for a plain bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<Overlay>,
    /// An overlay's containers on other hosts, which DNS answers from the file whether or
    /// not they run (no host asks another).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remotes: Vec<RemoteName>,
}

/// An overlay network's side on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlay {
    pub vni: u32,
    /// This host's underlay address (its VTEP sends from it).
    pub local: IpAddr,
    /// The MTU of every interface on it: the underlay's less VXLAN's overhead.
    pub mtu: u32,
    /// This host's range (first, last) for containers the file does not declare
    /// (`kiln run --host`): the other hosts have ranges of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<(IpAddr, IpAddr)>,
}

/// A container on another host of an overlay, as DNS names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteName {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub address: IpAddr,
}

/// A container's attachment to a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub container_id: String,
    pub container_name: String,
    /// More names DNS answers with this member's address (e.g. `web` for `web-1`).
    pub aliases: Vec<String>,
    /// The interface inside the container (`eth0`, `eth1`…).
    pub interface: String,
    pub address: IpAddr,
    pub mac: Option<String>,
}

/// What [`NetworkRecords::add_member`] needs to attach a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberRequest {
    pub container_id: String,
    pub container_name: String,
    pub aliases: Vec<String>,
    pub interface: String,
    /// The address asked for with `ip=`; allocated when `None`.
    pub address: Option<IpAddr>,
    /// Addresses other containers of the project ask for with `ip=`, which an allocated
    /// address must not take even before those containers start.
    pub reserved: BTreeSet<IpAddr>,
    pub mac: Option<String>,
}

impl NetworkRecord {
    /// A network with no members, its gateway the subnet's first host address, created now.
    pub fn new(
        name: &str,
        subnet: IpNetwork,
        internal: bool,
        bridge: String,
        project: Option<String>,
    ) -> Result<NetworkRecord, NetRecordError> {
        validate_reference(name)?;
        // A project's network is known as `project/name`, one of no project by its name.
        if crate::scope::split(name).0 != project.as_deref() {
            return Err(NetRecordError::InvalidName {
                name: name.to_string(),
            });
        }
        Ok(NetworkRecord {
            name: name.to_string(),
            subnet,
            gateway: ipam::gateway(subnet)?,
            internal,
            egress: false,
            bridge,
            created: crate::timestamp::now(),
            project,
            members: Vec::new(),
            overlay: None,
            remotes: Vec::new(),
        })
    }

    /// The key that places `container_name` on this network: `project/container/network`.
    pub fn ipam_key(&self, container_name: &str) -> String {
        format!(
            "{}/{container_name}/{}",
            self.project.as_deref().unwrap_or(""),
            self.short_name()
        )
    }

    /// Its name in its project (`front` of `shop/front`).
    pub fn short_name(&self) -> &str {
        crate::scope::split(&self.name).1
    }

    pub fn member(&self, container_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.container_id == container_id)
    }
}

/// Network names become file and device-related names: keep them plain.
pub fn validate_name(name: &str) -> Result<(), NetRecordError> {
    let plain = |name: &str| {
        let mut chars = name.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            && name.len() <= 64
    };
    if plain(name) {
        Ok(())
    } else {
        Err(NetRecordError::InvalidName {
            name: name.to_string(),
        })
    }
}

/// A network's reference: a plain name, or a project's (`shop/front`), each part plain.
pub fn validate_reference(reference: &str) -> Result<(), NetRecordError> {
    let ok = match crate::scope::split(reference) {
        (Some(project), name) => validate_name(project).is_ok() && validate_name(name).is_ok(),
        (None, name) => validate_name(name).is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(NetRecordError::InvalidName {
            name: reference.to_string(),
        })
    }
}

/// The network records of one state root.
#[derive(Debug, Clone)]
pub struct NetworkRecords {
    /// `$ROOT/net`.
    root: PathBuf,
}

impl NetworkRecords {
    /// `state_root/net/networks`, created if missing.
    pub fn open(state_root: &Path) -> Result<NetworkRecords, NetRecordError> {
        let records = NetworkRecords {
            root: state_root.join("net"),
        };
        let dir = records.networks_dir();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(records)
    }

    fn networks_dir(&self) -> PathBuf {
        self.root.join("networks")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.networks_dir()
            .join(format!("{}.json", crate::scope::file_key(name)))
    }

    /// The lock every change of this root's networks holds; released when dropped. The
    /// methods below that change records take it themselves.
    pub fn lock(&self) -> Result<nix::fcntl::Flock<File>, NetRecordError> {
        let path = self.root.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, errno)| {
            NetRecordError::Io {
                path,
                source: errno.into(),
            }
        })
    }

    /// Every network, sorted by name.
    pub fn list(&self) -> Result<Vec<NetworkRecord>, NetRecordError> {
        let dir = self.networks_dir();
        let mut records = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let file_name = entry.file_name();
            let Some(name) = file_name
                .to_str()
                .filter(|n| !n.starts_with('.'))
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue; // temporary files of an interrupted write
            };
            let reference = crate::scope::from_file_key(name);
            if validate_reference(&reference).is_ok()
                && let Some(record) = self.read(&reference)?
            {
                records.push(record);
            }
        }
        records.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(records)
    }

    /// The network whose reference is `name`, if it exists.
    pub fn find(&self, name: &str) -> Result<Option<NetworkRecord>, NetRecordError> {
        if validate_reference(name).is_err() {
            return Ok(None);
        }
        if let Some(record) = self.read(name)? {
            return Ok(Some(record));
        }
        // A project's network made before networks were per project is stored under its
        // short name (`front.json`, its project `shop`): it keeps working as `shop/front`
        // (its bridge and addresses as they are) until the project takes it down.
        if let (Some(project), short) = crate::scope::split(name)
            && let Some(legacy) = self.read(short)?
            && legacy.project.as_deref() == Some(project)
        {
            return Ok(Some(legacy));
        }
        Ok(None)
    }

    /// The record stored under exactly this reference.
    fn read(&self, name: &str) -> Result<Option<NetworkRecord>, NetRecordError> {
        let path = self.path(name);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(io_err(&path)(err)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| NetRecordError::Malformed { path, source })
    }

    /// The network a command-line reference names: `shop/front`, or a bare name resolved
    /// as [`crate::scope::resolve`] says (`context`: the current project).
    pub fn resolve(
        &self,
        reference: &str,
        context: Option<&str>,
    ) -> Result<NetworkRecord, NetRecordError> {
        let candidates = self.list()?.into_iter().map(|r| crate::scope::Candidate {
            project: r.project.clone(),
            name: r.short_name().to_string(),
            item: r,
        });
        crate::scope::resolve(crate::scope::Kind::Network, reference, context, candidates)?
            .ok_or_else(|| NetRecordError::NotFound {
                name: reference.to_string(),
            })
    }

    /// The network whose reference is `name`.
    pub fn load(&self, name: &str) -> Result<NetworkRecord, NetRecordError> {
        self.find(name)?.ok_or_else(|| NetRecordError::NotFound {
            name: name.to_string(),
        })
    }

    /// Writes `record` (temp file + rename, without fsync: after a power cut no container
    /// is running, and the addresses come back the same anyway). Callers hold [`Self::lock`].
    pub fn save(&self, record: &NetworkRecord) -> Result<(), NetRecordError> {
        validate_reference(&record.name)?;
        let path = self.path(&record.name);
        let bytes = serde_json::to_vec_pretty(record).expect("records serialize");
        crate::atomic_file::replace(&path, &bytes).map_err(io_err(&path))
    }

    /// Records a new network, refusing an existing name or a subnet overlapping another
    /// network's. Written durably (fsync), as it outlives every container.
    pub fn create(&self, record: &NetworkRecord) -> Result<(), NetRecordError> {
        validate_reference(&record.name)?;
        let _lock = self.lock()?;
        let existing = self.list()?;
        if existing.iter().any(|other| other.name == record.name) {
            return Err(NetRecordError::Exists {
                name: record.name.clone(),
            });
        }
        if let Some(other) = existing
            .iter()
            .find(|other| ipam::overlaps(other.subnet, record.subnet))
        {
            return Err(NetRecordError::Overlap {
                name: record.name.clone(),
                subnet: record.subnet,
                other: other.name.clone(),
                other_subnet: other.subnet,
            });
        }
        let path = self.path(&record.name);
        let bytes = serde_json::to_vec_pretty(record).expect("records serialize");
        crate::atomic_file::write_durably(&path, &bytes).map_err(io_err(&path))
    }

    /// Makes a network this host's side of an overlay, with the names of its containers on
    /// other hosts (whose addresses are then never allocated here).
    pub fn set_overlay(
        &self,
        name: &str,
        overlay: Overlay,
        remotes: Vec<RemoteName>,
    ) -> Result<(), NetRecordError> {
        let _lock = self.lock()?;
        let mut record = self.load(name)?;
        if record.overlay == Some(overlay) && record.remotes == remotes {
            return Ok(());
        }
        record.overlay = Some(overlay);
        record.remotes = remotes;
        self.save(&record)
    }

    /// Removes a network without members, returning its last record.
    pub fn remove(&self, name: &str) -> Result<NetworkRecord, NetRecordError> {
        let _lock = self.lock()?;
        let record = self.load(name)?;
        if !record.members.is_empty() {
            let members: Vec<&str> = record
                .members
                .iter()
                .map(|m| m.container_name.as_str())
                .collect();
            return Err(NetRecordError::InUse {
                name: name.to_string(),
                members: members.join(", "),
            });
        }
        let path = self.path(name);
        fs::remove_file(&path).map_err(io_err(&path))?;
        Ok(record)
    }

    /// Attaches a container, giving it its requested address or an allocated one. A
    /// container that is already a member keeps its membership, which is returned as is.
    pub fn add_member(
        &self,
        network: &str,
        request: MemberRequest,
    ) -> Result<Member, NetRecordError> {
        let _lock = self.lock()?;
        let mut record = self.load(network)?;
        if let Some(member) = record.member(&request.container_id) {
            return Ok(member.clone());
        }
        let address = match request.address {
            Some(address) => {
                ipam::check_fixed(record.subnet, record.gateway, address)?;
                if let Some(holder) = record.members.iter().find(|m| m.address == address) {
                    return Err(NetRecordError::AddressInUse {
                        address,
                        network: network.to_string(),
                        holder: holder.container_name.clone(),
                    });
                }
                address
            }
            None => {
                let taken: BTreeSet<IpAddr> = record
                    .members
                    .iter()
                    .map(|m| m.address)
                    .chain(record.remotes.iter().map(|r| r.address))
                    .collect();
                let key = record.ipam_key(&request.container_name);
                match record.overlay.and_then(|o| o.range) {
                    Some(range) => ipam::allocate_in(
                        record.subnet,
                        range,
                        record.gateway,
                        &taken,
                        &request.reserved,
                        &key,
                    )?,
                    None => ipam::allocate(
                        record.subnet,
                        record.gateway,
                        &taken,
                        &request.reserved,
                        &key,
                    )?,
                }
            }
        };
        let member = Member {
            container_id: request.container_id,
            container_name: request.container_name,
            aliases: request.aliases,
            interface: request.interface,
            address,
            mac: request.mac,
        };
        record.members.push(member.clone());
        record
            .members
            .sort_by(|a, b| a.container_name.cmp(&b.container_name));
        self.save(&record)?;
        Ok(member)
    }

    /// Detaches many containers of one network at once (one read and one write of its
    /// record); a network that is gone, or ids that are not members, are fine.
    pub fn remove_members(
        &self,
        network: &str,
        container_ids: &std::collections::BTreeSet<&str>,
    ) -> Result<(), NetRecordError> {
        let _lock = self.lock()?;
        let Some(mut record) = self.find(network)? else {
            return Ok(());
        };
        let before = record.members.len();
        record
            .members
            .retain(|m| !container_ids.contains(m.container_id.as_str()));
        if record.members.len() != before {
            self.save(&record)?;
        }
        Ok(())
    }

    /// Detaches a container; returns its membership, or `None` if it was not a member.
    pub fn remove_member(
        &self,
        network: &str,
        container_id: &str,
    ) -> Result<Option<Member>, NetRecordError> {
        let _lock = self.lock()?;
        let mut record = self.load(network)?;
        let Some(index) = record
            .members
            .iter()
            .position(|m| m.container_id == container_id)
        else {
            return Ok(None);
        };
        let member = record.members.remove(index);
        self.save(&record)?;
        Ok(Some(member))
    }
}
