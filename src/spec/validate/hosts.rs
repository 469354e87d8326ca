//! Multi-host projects: the hosts' underlay addresses agree on one address family, and no
//! two overlay networks share a VXLAN network identifier (VNI). Where containers go is not
//! checked here: placement is `project`'s, handed in through `Options::check_placement`.

use std::collections::BTreeMap;

use crate::spec::diag::{Code, Diagnostics};
use crate::spec::model::{Driver, Project};
use crate::spec::source::Span;

pub(super) fn check(project: &Project, diags: &mut Diagnostics) {
    check_families(project, diags);
    check_vnis(project, diags);
}

/// One VXLAN device speaks one underlay family: IPv4 hosts and IPv6 hosts cannot peer.
fn check_families(project: &Project, diags: &mut Diagnostics) {
    let mut addresses = project.hosts.iter().filter_map(|h| h.address.as_ref());
    let Some(first) = addresses.next() else {
        return;
    };
    for other in addresses.filter(|a| a.value.is_ipv4() != first.value.is_ipv4()) {
        let family = |ipv4: bool| if ipv4 { "IPv4" } else { "IPv6" };
        diags
            .error(
                Code::InvalidAddress,
                other.span,
                format!(
                    "host address {} is {}, the first host's is {}",
                    other.value,
                    family(other.value.is_ipv4()),
                    family(first.value.is_ipv4())
                ),
            )
            .label("VXLAN between hosts speaks one address family")
            .related(first.span, "the first host's address")
            .help("give every host an address of the same family");
    }
}

/// Two overlays with one VNI would be one broadcast domain on every host.
fn check_vnis(project: &Project, diags: &mut Diagnostics) {
    let mut seen: BTreeMap<u32, (&str, Span, bool)> = BTreeMap::new();
    for network in project
        .networks
        .iter()
        .filter(|n| n.driver == Driver::Overlay)
    {
        let vni = network.vni(&project.name);
        let (span, explicit) = match &network.vni {
            Some(v) => (v.span, true),
            None => (network.name.span, false),
        };
        let Some((first, first_span, first_explicit)) = seen.get(&vni).copied() else {
            seen.insert(vni, (&network.name.value, span, explicit));
            continue;
        };
        let how = |explicit: bool| {
            if explicit {
                "given"
            } else {
                "derived from its name"
            }
        };
        diags
            .error(
                Code::VniCollision,
                span,
                format!(
                    "overlay `{}` has VNI {vni}, as has overlay `{first}`",
                    network.name.value
                ),
            )
            .label(format!("VNI {vni}, {}", how(explicit)))
            .related(first_span, format!("`{first}` has VNI {vni}, {}", how(first_explicit)))
            .help("give one of them another `vni=` (1 to 16777215): traffic of one VNI reaches every container of it");
    }
}
