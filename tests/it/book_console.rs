//! The book's console examples are what kiln prints: every ```` ```console ```` block of the
//! book runs, in a sandbox, and its output must match the book's (stable lines exactly; what
//! varies by shape), or the block says why it is not run. The convention is in
//! `tests/it/harness/console.rs` and `book/README.md`.

use crate::harness::console::{check_chain, page, page_names};

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
    up_down => "projects/up-down.md",
    tests => "projects/tests.md",
    rollouts => "projects/rollouts.md",
}

#[test]
fn every_console_block_runs_or_says_why_not_and_every_chain_has_a_test() {
    let names = page_names();
    let mut heads = Vec::new();
    for name in &names {
        // Reading a page checks its directives: an unknown one, or `unchecked:` without a
        // reason, fails here.
        let page = page(name);
        if let Some(first) = &page.continues {
            assert!(
                names.contains(first),
                "{name} continues {first}, which is not a page"
            );
        } else if page.runs() {
            heads.push(name.clone());
        }
    }
    let mut listed: Vec<String> = CHAINS.iter().map(|c| c.to_string()).collect();
    listed.sort();
    heads.sort();
    assert_eq!(
        listed, heads,
        "every page whose console blocks run starts a chain with a test in tests/it/book_console.rs"
    );
}
