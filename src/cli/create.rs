//! `kiln create`: `kiln run`'s options, the same request (`containers::request`), a
//! container made ready and not started; prints its id.

use super::args::{Cli, CreateArgs};
use super::output::line;
use crate::containers::{self, ContainerError};

pub(super) fn run(cli: &Cli, args: &CreateArgs) -> Result<u8, crate::Error> {
    // `web`: the current project's, a plain tag, or the one project's that has it.
    let image = super::registry::run_image(&super::open_store(cli)?, &args.image, args.pull)?;
    let outcome = (|| {
        if args.trace {
            return Err(ContainerError::BadLimit {
                what: "option",
                value: "--trace".into(),
                reason: "`kiln create` starts nothing to trace; `kiln run --trace` traces a start"
                    .into(),
            });
        }
        let (store, request, health) = super::containers::request(cli, args, image)?;
        containers::create(&store, &super::state_root(cli), &request, health)
    })();
    match outcome {
        Ok(record) => {
            line(record.id.as_str())?;
            Ok(0)
        }
        Err(err) => {
            let code = err.exit_code();
            eprintln!("{:?}", miette::Report::new(err));
            Ok(code)
        }
    }
}
