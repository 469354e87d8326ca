//! `kiln exec`: a command in a running container.

use super::args::{Cli, ExecArgs};
use crate::containers::{self, ContainerError, ExecRequest};

pub(super) fn run(cli: &Cli, args: &ExecArgs) -> Result<u8, crate::Error> {
    if args.detach && (args.tty || args.interactive) {
        let err = ContainerError::BadLimit {
            what: "option",
            value: if args.tty { "-t" } else { "-i" }.into(),
            reason: "a detached exec has no terminal or input".into(),
        };
        eprintln!("{:?}", miette::Report::new(err));
        return Ok(125);
    }
    let env = args
        .env
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            // `-e NAME` takes the value from kiln's own environment, as Docker does.
            None => (pair.clone(), std::env::var(pair).unwrap_or_default()),
        })
        .collect();
    let request = ExecRequest {
        command: args.command.clone(),
        env,
        user: args.user.clone(),
        workdir: args.workdir.clone(),
        interactive: args.interactive,
        tty: args.tty,
        detach: args.detach,
        trace: args.trace,
    };
    let target = match super::container_ids(cli, std::slice::from_ref(&args.container)) {
        Ok(ids) => ids.into_iter().next().unwrap_or_default(),
        Err(err) => {
            eprintln!("{:?}", miette::Report::new(ContainerError::from(err)));
            return Ok(125);
        }
    };
    match containers::exec(&super::state_root(cli), &target, &request) {
        Ok(Some(status)) => Ok(u8::try_from(status.code()).unwrap_or(255)),
        Ok(None) => Ok(0),
        Err(err) => {
            let code = err.exit_code();
            eprintln!("{:?}", miette::Report::new(err));
            Ok(code)
        }
    }
}
