//! `kiln top`: a running container's processes as a table.

use super::args::{Cli, TopArgs};
use super::output::table;
use crate::containers::{self, ContainerError};
use crate::state::Records;

pub(super) fn run(cli: &Cli, args: &TopArgs) -> Result<u8, crate::Error> {
    let outcome = (|| {
        let columns = containers::top_columns(&args.options)?;
        let records = Records::open(&super::state_root(cli)).map_err(ContainerError::from)?;
        let record = super::find_container(&records, &args.container)?;
        containers::top(&records, &record, &columns)
    })();
    match outcome {
        Ok(rows) => {
            table(&rows)?;
            Ok(0)
        }
        Err(err) => {
            eprintln!("{:?}", miette::Report::new(err));
            Ok(1)
        }
    }
}
