//! Real sandboxes (root only).
