//! `kiln wait`: each container's exit code once it does not run, one a line, in the order
//! given (as `docker wait`); exit 1 if any could not be waited for.

use super::args::{Cli, WaitArgs};
use super::output::line;
use crate::containers::{self, ContainerError};
use crate::state::Records;

pub(super) fn run(cli: &Cli, args: &WaitArgs) -> Result<u8, crate::Error> {
    let records = Records::open(&super::state_root(cli)).map_err(ContainerError::from)?;
    let mut code = 0;
    for query in &args.containers {
        let waited = super::find_container(&records, query)
            .map_err(ContainerError::from)
            .and_then(|record| containers::wait(&records, &record));
        match waited {
            Ok(waited) => line(waited.exit_code.to_string())?,
            Err(err) => {
                eprintln!("{:?}", miette::Report::new(err));
                code = 1;
            }
        }
    }
    Ok(code)
}
