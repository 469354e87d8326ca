//! The kiln binary: install the report handler, run the command, map the outcome to an exit
//! code. Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    miette::set_hook(Box::new(|_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .terminal_links(false)
                .build(),
        )
    }))
    .ok();
    match kiln::cli::run(std::env::args_os()) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("{:?}", miette::Report::new(err));
            ExitCode::from(1)
        }
    }
}
