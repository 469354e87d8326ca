//! The book's console examples are what kiln prints: every ```` ```console ```` block of the
//! book runs, in a sandbox, and its output must match the book's (stable lines exactly; what
//! varies by shape), or the block says why it is not run. The convention is in
//! `tests/it/harness/console.rs` and `book/README.md`.

use crate::harness::console::{Step, check_chain, page, page_names};
use crate::harness::repo;

/// One test for each chain of pages whose sessions run together (a page and the pages that
/// continue it); `CHAINS` lists their first pages.
macro_rules! chains {
    ($($test:ident => $first:literal,)*) => {
        const CHAINS: &[&str] = &[$($first),*];
        $(
            #[test]
            fn $test() {
                check_chain($first);
            }
        )*
    };
}

chains! {
    getting_started => "getting-started.md",
    check => "language/check.md",
    diagnostics => "diagnostics.md",
    oci => "inside/oci.md",
    cache => "inside/cache.md",
    reproducible => "inside/reproducible.md",
    namespaces_rootfs_cgroups_security => "inside/namespaces.md",
    supervisors => "inside/supervisors.md",
    dns_ports => "inside/dns-ports.md",
    networks => "inside/networks.md",
    impairments => "inside/impairments.md",
    up_down => "projects/up-down.md",
    tests => "projects/tests.md",
    rollouts => "projects/rollouts.md",
}

/// At most one console block in this many may be left unrun: a block that is not run is
/// the exception, for a reason the block gives.
const AT_MOST_ONE_UNCHECKED_IN: usize = 5;

#[test]
fn every_console_block_runs_or_says_why_not_and_every_chain_has_a_test() {
    let names = page_names();
    let mut heads = Vec::new();
    let (mut run, mut unchecked) = (0, Vec::new());
    for name in &names {
        // Reading a page checks its directives: an unknown one, or `unchecked:` without a
        // reason, fails here.
        let page = page(name);
        run += page
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Console { .. }))
            .count();
        unchecked.extend(page.unchecked.iter().cloned());
        if let Some(first) = &page.continues {
            assert!(
                names.contains(first),
                "{name} continues {first}, which is not a page"
            );
        } else if page.runs() {
            heads.push(name.clone());
        }
    }
    // A reason that points at the test doing what the block shows points at a real one.
    for (place, reason) in &unchecked {
        for word in reason.split(|c: char| c.is_whitespace() || c == '(' || c == ')') {
            if word.starts_with("tests/") {
                assert!(
                    repo().join(word).exists(),
                    "{place}: the reason names {word}, which is not there"
                );
            }
        }
    }
    assert!(
        unchecked.len() * AT_MOST_ONE_UNCHECKED_IN <= run + unchecked.len(),
        "{} of {} console blocks are not run: run them (a `file:` block can give a session \
         what it needs) rather than mark them unchecked:\n{}",
        unchecked.len(),
        run + unchecked.len(),
        unchecked
            .iter()
            .map(|(place, why)| format!("{place}: {why}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mut listed: Vec<String> = CHAINS.iter().map(|c| c.to_string()).collect();
    listed.sort();
    heads.sort();
    assert_eq!(
        listed, heads,
        "every page whose console blocks run starts a chain with a test in tests/it/book_console.rs"
    );
}
