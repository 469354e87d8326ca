//! `kiln network inspect` of a network of simulated hosts (an overlay of a project with
//! hosts): per host its bridge, its members and its VXLAN tunnel endpoint as the kernel has
//! it — VNI, underlay address, peers, forwarding entries, counters.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::args::OutputFormat;
use super::output::{json_line, line};
use crate::net::records::NetworkRecord;
use crate::net::{HostNamespace, NetNs};

/// The JSON of one host's VTEP of `record`, `null` when it is not an overlay or has none.
fn vtep(net_root: &Path, record: &NetworkRecord) -> serde_json::Value {
    let Some(overlay) = record.overlay else {
        return serde_json::Value::Null;
    };
    let state = NetNs::open(&HostNamespace::path(net_root))
        .ok()
        .and_then(|ns| {
            crate::net::overlay::inspect(&ns, overlay.vni)
                .ok()
                .flatten()
        });
    let Some(state) = state else {
        return json!({ "vni": overlay.vni, "local": overlay.local.to_string(), "device": null });
    };
    json!({
        "device": state.device,
        "vni": overlay.vni,
        "local": overlay.local.to_string(),
        "port": crate::net::overlay::VXLAN_PORT,
        "mtu": state.mtu,
        "up": state.up,
        "peers": state.peers.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "remotes": state.remotes.iter().map(|(mac, host)| json!({
            "mac": mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"),
            "host": host.to_string(),
        })).collect::<Vec<_>>(),
        "rx_bytes": state.stats.rx_bytes,
        "tx_bytes": state.stats.tx_bytes,
        "rx_packets": state.stats.rx_packets,
        "tx_packets": state.stats.tx_packets,
    })
}

/// Prints the network as each simulated host has it (`members`: the usual inspection of
/// one host's record, `cli::network`'s).
pub(super) fn inspect(
    on_hosts: &[(String, PathBuf, NetworkRecord)],
    format: OutputFormat,
    members: fn(&Path, &NetworkRecord) -> serde_json::Value,
) -> Result<u8, crate::Error> {
    let (_, _, first) = &on_hosts[0];
    let hosts: Vec<serde_json::Value> = on_hosts
        .iter()
        .map(|(host, net_root, record)| {
            let one = members(net_root, record);
            json!({
                "host": host,
                "bridge": record.bridge,
                "vtep": vtep(net_root, record),
                "members": one["members"],
                "remotes": record.remotes.iter().map(|r| json!({
                    "name": r.name,
                    "address": r.address.to_string(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let value = json!({
        "name": first.name,
        "subnet": first.subnet.to_string(),
        "gateway": first.gateway.to_string(),
        "internal": first.internal,
        "driver": if first.overlay.is_some() { "overlay" } else { "bridge" },
        "vni": first.overlay.map(|o| o.vni),
        "mtu": first.overlay.map(|o| o.mtu),
        "project": first.project,
        "created": first.created,
        "hosts": hosts,
    });
    match format {
        OutputFormat::Json => json_line(&value)?,
        OutputFormat::Text => {
            line(format!(
                "{}: {} {}, gateway {} on every host",
                first.name,
                first.subnet,
                match first.overlay {
                    Some(o) => format!(
                        "overlay VNI {} (UDP {}), MTU {}",
                        o.vni,
                        crate::net::overlay::VXLAN_PORT,
                        o.mtu
                    ),
                    None => "bridge on each host".to_string(),
                },
                first.gateway,
            ))?;
            for host in value["hosts"].as_array().into_iter().flatten() {
                let v = &host["vtep"];
                let tunnel = if v["device"].is_string() {
                    format!(
                        "VTEP {} from {} {}, peers {}, {} forwarding entries, rx {} B / {} packets, tx {} B / {} packets",
                        v["device"].as_str().unwrap_or(""),
                        v["local"].as_str().unwrap_or(""),
                        if v["up"] == true { "up" } else { "down" },
                        v["peers"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|p| p.as_str())
                            .collect::<Vec<_>>()
                            .join(" "),
                        v["remotes"].as_array().map_or(0, Vec::len),
                        v["rx_bytes"],
                        v["rx_packets"],
                        v["tx_bytes"],
                        v["tx_packets"],
                    )
                } else if v.is_null() {
                    "no VTEP (not an overlay)".to_string()
                } else {
                    "VTEP missing".to_string()
                };
                line(format!(
                    "  host {}: bridge {}, {tunnel}",
                    host["host"].as_str().unwrap_or(""),
                    host["bridge"].as_str().unwrap_or(""),
                ))?;
                for member in host["members"].as_array().into_iter().flatten() {
                    line(format!(
                        "    {} {} {}  rx {} B  tx {} B",
                        member["name"].as_str().unwrap_or(""),
                        member["interface"].as_str().unwrap_or(""),
                        member["address"].as_str().unwrap_or(""),
                        member["rx_bytes"],
                        member["tx_bytes"],
                    ))?;
                }
            }
        }
    }
    Ok(0)
}
