//! A tiny root filesystem copied from the host.
