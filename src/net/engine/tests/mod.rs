//! The engine's pure parts: the model with a seeded generator and a virtual clock
//! (statistical tests with fixed seeds, bounded in size), distribution tables, frames.

mod dist;
mod frame;
mod model;
