//! Tests of the cgroup layer: parsers and limits (pure), v2 against a fake cgroupfs that
//! behaves like the kernel (no root needed), and v1 for real on this machine (root only).

mod devices;
mod devices_real;
mod fake_kernel;
mod hybrid_fake;
mod parse;
mod v1_real;
mod v2_fake;
