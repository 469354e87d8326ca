//! Tests of the kernel-facing network layer: names and netem encoding (pure), and real
//! namespaces, veths, bridges and qdiscs (root only; each test checks it left nothing).

mod dist;
mod kernel;
mod names;
mod netem;
mod overlay;

#[test]
fn container_macs_come_from_their_addresses() {
    use crate::net::attach::mac_for;
    assert_eq!(
        mac_for("10.89.0.10".parse().unwrap()),
        [0x02, 0x42, 10, 89, 0, 10]
    );
    // Locally administered (bit 1), unicast (bit 0 clear).
    assert_eq!(mac_for("192.0.2.1".parse().unwrap())[0] & 0b11, 0b10);
}
