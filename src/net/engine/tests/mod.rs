//! The engine's pure parts: the model with a seeded generator and a virtual clock
//! (statistical tests with fixed seeds, bounded in size), frames. The distribution tables
//! are netem's (`net::netem::dist`), tested in `net::tests::dist`.

mod frame;
mod model;
