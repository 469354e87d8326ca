//! `kiln create`: `kiln run`'s options, the same request (`containers::request`), a
//! container made ready and not started; prints its id.

use super::args::{Cli, CreateArgs};
use super::output::line;
use crate::containers::{self, ContainerError};

pub(super) fn run(cli: &Cli, args: &CreateArgs) -> Result<u8, crate::Error> {
    let outcome = (|| {
        if args.trace {
            return Err(ContainerError::BadLimit {
                what: "option",
                value: "--trace".into(),
                reason: "`kiln create` starts nothing to trace; `kiln run --trace` traces a start"
                    .into(),
            });
        }
        let (store, request, health) = super::containers::request(cli, args)?;
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
