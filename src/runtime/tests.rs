//! Tests of the sandbox: the plan and its execution against a recording fake (no root
//! needed), and real sandboxes on a tiny root filesystem copied from the host (root only).

mod container;
mod container_plan;
mod fake;
mod plan;
mod real;
mod rootfs;
mod runc;
