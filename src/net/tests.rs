//! Tests of the kernel-facing network layer: names and netem encoding (pure), and real
//! namespaces, veths, bridges and qdiscs (root only; each test checks it left nothing).

mod kernel;
mod names;
mod netem;
