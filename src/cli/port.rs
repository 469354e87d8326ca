//! `kiln port`: a running container's published ports, in Docker's format.

use super::args::{Cli, PortArgs};
use super::output::line;
use crate::containers::{self, ContainerError, PortQuery};
use crate::state::Records;

pub(super) fn run(cli: &Cli, args: &PortArgs) -> Result<u8, crate::Error> {
    let outcome = (|| {
        let query = args.port.as_deref().map(PortQuery::parse).transpose()?;
        let records = Records::open(&super::state_root(cli)).map_err(ContainerError::from)?;
        let record = super::find_container(&records, &args.container)?;
        containers::port_lines(&records, &record, query)
    })();
    match outcome {
        Ok(lines) => {
            for text in lines {
                line(text)?;
            }
            Ok(0)
        }
        Err(err) => {
            eprintln!("{:?}", miette::Report::new(err));
            Ok(1)
        }
    }
}
