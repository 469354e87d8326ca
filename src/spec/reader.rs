//! A span-keeping reader over one KDL node.
//!
//! Owns the mechanics every node parser shares: positional arguments and properties with the
//! span of each value, type checks, missing/extra arguments, duplicate and unknown properties
//! (with "did you mean", from the properties the parser asked for). It knows nothing of kiln's
//! nodes: `parse` decides what each node means.

use kdl::KdlValue;

use super::diag::{Code, Diagnostics, did_you_mean};
use super::kdlv2;
use super::source::{FileId, Span, Spanned};

/// A KDL value with its span (the value itself, without `key=`).
#[derive(Clone, Copy)]
pub(crate) struct Value<'a> {
    pub(crate) value: &'a KdlValue,
    pub(crate) span: Span,
}

pub(crate) fn type_name(value: &KdlValue) -> &'static str {
    match value {
        KdlValue::String(_) => "a string",
        KdlValue::Integer(_) => "an integer",
        KdlValue::Float(_) => "a number",
        KdlValue::Bool(_) => "a boolean",
        KdlValue::Null => "#null",
    }
}

impl<'a> Value<'a> {
    pub(crate) fn string(self, diags: &mut Diagnostics, what: &str) -> Option<Spanned<String>> {
        match self.value {
            KdlValue::String(s) => Some(Spanned::new(s.clone(), self.span)),
            other => {
                wrong_type(diags, self.span, what, "a string", other);
                None
            }
        }
    }

    pub(crate) fn integer(self, diags: &mut Diagnostics, what: &str) -> Option<Spanned<i128>> {
        match self.value {
            KdlValue::Integer(i) => Some(Spanned::new(*i, self.span)),
            other => {
                wrong_type(diags, self.span, what, "an integer", other);
                None
            }
        }
    }

    /// An integer or a decimal number.
    pub(crate) fn number(self, diags: &mut Diagnostics, what: &str) -> Option<Spanned<f64>> {
        match self.value {
            KdlValue::Integer(i) => Some(Spanned::new(*i as f64, self.span)),
            KdlValue::Float(f) => Some(Spanned::new(*f, self.span)),
            other => {
                wrong_type(diags, self.span, what, "a number", other);
                None
            }
        }
    }

    pub(crate) fn boolean(self, diags: &mut Diagnostics, what: &str) -> Option<Spanned<bool>> {
        match self.value {
            KdlValue::Bool(b) => Some(Spanned::new(*b, self.span)),
            other => {
                let help = match other {
                    KdlValue::String(s) if s == "true" || s == "false" => {
                        Some(format!("KDL booleans are written `#{s}`"))
                    }
                    _ => Some("write `#true` or `#false`".to_string()),
                };
                wrong_type(diags, self.span, what, "a boolean", other).maybe_help(help);
                None
            }
        }
    }
}

fn wrong_type<'d>(
    diags: &'d mut Diagnostics,
    span: Span,
    what: &str,
    expected: &str,
    found: &KdlValue,
) -> super::diag::DiagnosticBuilder<'d> {
    let builder = diags
        .error(Code::WrongType, span, format!("{what} must be {expected}"))
        .label(format!("this is {}", type_name(found)));
    match (expected, found) {
        ("a string", KdlValue::Integer(i)) => builder.help(format!("quote it: `\"{i}\"`")),
        ("an integer", KdlValue::String(s)) if s.parse::<i128>().is_ok() => {
            builder.help(format!("remove the quotes: `{s}`"))
        }
        _ => builder,
    }
}

/// One node being read. Ask for every property the node takes (`prop_*`), then call
/// [`Node::finish`]: any property not asked for is reported as unknown.
pub(crate) struct Node<'a> {
    node: &'a kdlv2::Node,
    file: FileId,
    args: Vec<Value<'a>>,
    props: Vec<(&'a str, Span, Value<'a>)>,
    asked: Vec<&'static str>,
    all_props_taken: bool,
    /// How the node is written, for `help` (e.g. `image NAME { … }`).
    usage: &'static str,
}

impl<'a> Node<'a> {
    pub(crate) fn new(
        node: &'a kdlv2::Node,
        file: FileId,
        diags: &mut Diagnostics,
        usage: &'static str,
    ) -> Self {
        let mut args = Vec::new();
        let mut props: Vec<(&'a str, Span, Value<'a>)> = Vec::new();
        for entry in node.entries() {
            let entry_span = Span::from_miette(file, entry.span());
            match entry.name() {
                None => args.push(Value {
                    value: entry.value(),
                    span: entry_span,
                }),
                Some(key) => {
                    let key_span = Span::from_miette(file, key.span());
                    let value = Value {
                        value: entry.value(),
                        span: Span::from_miette(file, entry.value_span()),
                    };
                    if let Some(previous) = props.iter().position(|(k, _, _)| *k == key.value()) {
                        diags
                            .warning(
                                Code::DuplicateProperty,
                                key_span,
                                format!("property `{}` is given twice", key.value()),
                            )
                            .label("this one wins")
                            .related(props[previous].1, "first given here")
                            .help("remove one of them");
                        props.remove(previous);
                    }
                    props.push((key.value(), key_span, value));
                }
            }
        }
        Node {
            node,
            file,
            args,
            props,
            asked: Vec::new(),
            all_props_taken: false,
            usage,
        }
    }

    pub(crate) fn name(&self) -> &'a str {
        self.node.name().value()
    }

    /// The whole node, block included.
    pub(crate) fn span(&self) -> Span {
        Span::from_miette(self.file, self.node.span())
    }

    pub(crate) fn name_span(&self) -> Span {
        Span::from_miette(self.file, self.node.name().span())
    }

    /// The node's name and arguments, without properties or block: the span a diagnostic
    /// about the node as a whole points at.
    pub(crate) fn head_span(&self) -> Span {
        let start = self.name_span();
        let end = self.args.last().map_or(start.end(), |a| a.span.end());
        Span::new(
            self.file,
            start.offset as usize,
            end - start.offset as usize,
        )
    }

    /// The `{` that opens the node's block (the whole node if it has none).
    pub(crate) fn block_open_span(&self) -> Span {
        self.node.children_open().map_or_else(
            || Span::from_miette(self.file, self.node.span()),
            |open| Span::from_miette(self.file, open),
        )
    }

    pub(crate) fn arg_count(&self) -> usize {
        self.args.len()
    }

    pub(crate) fn arg(&self, index: usize) -> Option<Value<'a>> {
        self.args.get(index).copied()
    }

    fn missing_arg(&self, diags: &mut Diagnostics, what: &str) {
        diags
            .error(
                Code::MissingArgument,
                self.name_span(),
                format!("`{}` is missing {what}", self.name()),
            )
            .help(format!("write it as `{}`", self.usage));
    }

    /// A required string argument.
    pub(crate) fn str_arg(
        &self,
        diags: &mut Diagnostics,
        index: usize,
        what: &str,
    ) -> Option<Spanned<String>> {
        match self.arg(index) {
            Some(v) => v.string(diags, what),
            None => {
                self.missing_arg(diags, what);
                None
            }
        }
    }

    /// A required argument of any type, to be checked by the caller.
    pub(crate) fn any_arg(
        &self,
        diags: &mut Diagnostics,
        index: usize,
        what: &str,
    ) -> Option<Value<'a>> {
        let arg = self.arg(index);
        if arg.is_none() {
            self.missing_arg(diags, what);
        }
        arg
    }

    /// String arguments from `from` on; at least `min` of them.
    pub(crate) fn str_args(
        &self,
        diags: &mut Diagnostics,
        from: usize,
        min: usize,
        what: &str,
    ) -> Vec<Spanned<String>> {
        if self.args.len() < from + min {
            self.missing_arg(diags, what);
        }
        self.args
            .iter()
            .skip(from)
            .filter_map(|v| v.string(diags, what))
            .collect()
    }

    /// Reports every argument past the first `max`.
    pub(crate) fn max_args(&self, diags: &mut Diagnostics, max: usize) {
        if self.args.len() > max {
            let first = self.args[max].span;
            let last = self.args[self.args.len() - 1].span;
            let span = Span::new(
                self.file,
                first.offset as usize,
                last.end() - first.offset as usize,
            );
            let extra = self.args.len() - max;
            let takes = match max {
                0 => "no arguments".to_string(),
                1 => "one argument".to_string(),
                n => format!("{n} arguments"),
            };
            diags
                .error(
                    Code::ExtraArgument,
                    span,
                    format!("`{}` takes {takes}", self.name()),
                )
                .label(if extra == 1 {
                    "remove this argument".to_string()
                } else {
                    format!("remove these {extra} arguments")
                })
                .help(format!("write it as `{}`", self.usage));
        }
    }

    fn take_prop(&mut self, key: &'static str) -> Option<Value<'a>> {
        self.asked.push(key);
        self.props
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
    }

    pub(crate) fn prop_str(
        &mut self,
        diags: &mut Diagnostics,
        key: &'static str,
    ) -> Option<Spanned<String>> {
        self.take_prop(key)?.string(diags, &format!("`{key}`"))
    }

    pub(crate) fn prop_int(
        &mut self,
        diags: &mut Diagnostics,
        key: &'static str,
    ) -> Option<Spanned<i128>> {
        self.take_prop(key)?.integer(diags, &format!("`{key}`"))
    }

    pub(crate) fn prop_bool(
        &mut self,
        diags: &mut Diagnostics,
        key: &'static str,
    ) -> Option<Spanned<bool>> {
        self.take_prop(key)?.boolean(diags, &format!("`{key}`"))
    }

    /// A property with the span of its key, marked as taken.
    pub(crate) fn prop_with_key(&mut self, key: &'static str) -> Option<(Span, Value<'a>)> {
        self.asked.push(key);
        self.props
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, span, v)| (*span, *v))
    }

    pub(crate) fn prop_any(&mut self, key: &'static str) -> Option<Value<'a>> {
        self.take_prop(key)
    }

    /// A property that must be present.
    pub(crate) fn required_str(
        &mut self,
        diags: &mut Diagnostics,
        key: &'static str,
    ) -> Option<Spanned<String>> {
        let present = self.props.iter().any(|(k, _, _)| *k == key);
        if !present {
            self.asked.push(key);
            diags
                .error(
                    Code::MissingProperty,
                    self.head_span(),
                    format!("`{}` needs `{key}=`", self.name()),
                )
                .help(format!("write it as `{}`", self.usage));
            return None;
        }
        self.prop_str(diags, key)
    }

    /// Every property as a key/value pair (for nodes like `env K=V`); none is unknown then.
    pub(crate) fn all_props(&mut self) -> Vec<(Spanned<String>, Value<'a>)> {
        self.all_props_taken = true;
        self.props
            .iter()
            .map(|(k, span, v)| (Spanned::new((*k).to_string(), *span), *v))
            .collect()
    }

    pub(crate) fn children(&self) -> Option<&'a kdlv2::Document> {
        self.node.children()
    }

    /// Reports a `{ … }` block on a node that takes none.
    pub(crate) fn no_children(&self, diags: &mut Diagnostics) {
        if self.node.children().is_some() {
            diags
                .error(
                    Code::UnexpectedBlock,
                    self.block_open_span(),
                    format!("`{}` takes no block", self.name()),
                )
                .label("this block")
                .help(format!("remove the block; write it as `{}`", self.usage));
        }
    }

    /// Reports every property that no `prop_*` call asked for.
    pub(crate) fn finish(self, diags: &mut Diagnostics) {
        if self.all_props_taken {
            return;
        }
        for (key, span, _) in &self.props {
            if self.asked.contains(key) {
                continue;
            }
            let builder = diags.error(
                Code::UnknownProperty,
                *span,
                format!("unknown property `{key}` on `{}`", self.name()),
            );
            let suggestion = did_you_mean(key, self.asked.iter().copied());
            let help = match (suggestion, self.asked.is_empty()) {
                (Some(s), _) => s,
                (None, true) => format!("`{}` takes no properties", self.name()),
                (None, false) => format!(
                    "`{}` takes {}",
                    self.name(),
                    self.asked
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            builder.help(help);
        }
    }
}
