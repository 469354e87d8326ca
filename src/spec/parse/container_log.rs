//! A container's `log` node: the cap on the log its supervisor keeps, with the names and
//! meaning of Docker's json-file and local drivers' `--log-opt`s:
//! `log max-size="10m" max-file=3` (`max-size=-1`: no cap).

use kdl::KdlValue;

use super::values;
use crate::spec::diag::{Code, Diagnostics};
use crate::spec::model::{Container, LogCap};
use crate::spec::reader::Node;
use crate::spec::source::Spanned;
use crate::spec::units::Size;

/// The usage line of `log`.
pub(super) const USAGE: &str = "log [max-size=\"10m\"|-1] [max-file=3]";

/// Parses a `log` node into `c.log`.
pub(super) fn parse(n: &mut Node<'_>, diags: &mut Diagnostics, c: &mut Container) {
    n.max_args(diags, 0);
    let max_size = n.prop_any("max-size").and_then(|v| match v.value {
        KdlValue::Integer(-1) => Some(Spanned::new(None, v.span)),
        _ => {
            let size = values::size(diags, v, "`max-size`")?;
            if size.value.0 == 0 {
                diags
                    .error(Code::ValueOutOfRange, size.span, "`max-size` is 0")
                    .label("a log file must hold at least one byte")
                    .help("write a size like `\"10m\"`, or -1 for no cap");
                return None;
            }
            Some(Spanned::new(Some(Size(size.value.0)), size.span))
        }
    });
    let max_file = n
        .prop_int(diags, "max-file")
        .and_then(|v| values::bounded(diags, v, "`max-file`", 1, 1000))
        .map(|v| v.map(|n| n as u32));
    c.log = Some(LogCap { max_size, max_file });
}
