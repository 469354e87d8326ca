//! `kiln start`: created or stopped containers started under their supervisors (names
//! printed, as Docker does), or one in the foreground with `-a`.

use super::args::{Cli, StartArgs};
use super::error::CliError;
use crate::containers::{self, ContainerError};
use crate::state::Records;

pub(super) fn run(cli: &Cli, args: &StartArgs) -> Result<u8, crate::Error> {
    let root = super::state_root(cli);
    if args.attach || args.interactive {
        let [query] = args.containers.as_slice() else {
            return Err(CliError::AttachOneContainer.into());
        };
        let outcome = Records::open(&root)
            .map_err(ContainerError::from)
            .and_then(|records| {
                let record = super::find_container(&records, query)?;
                containers::start_attached(&records, &record, &root, args.interactive)
            });
        return match outcome {
            Ok(result) => Ok(result.exit_code()),
            Err(err) => {
                let code = err.exit_code();
                eprintln!("{:?}", miette::Report::new(err));
                Ok(code)
            }
        };
    }
    super::containers::for_each_container(cli, &args.containers, |records, record| {
        containers::start(records, record, &root).map(drop)
    })
}
