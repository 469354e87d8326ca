//! Throwaway network namespaces for tests: made by a thread that unshares, with `lo` up and
//! a test address on it; gone when the last handle, socket and thread in it are.

use std::fs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use nix::sched::{CloneFlags, unshare};

/// A network namespace of its own, not the machine's.
pub(crate) struct TempNetns {
    fd: OwnedFd,
    inode: u64,
}

fn netns_inode(path: &str) -> u64 {
    fs::metadata(path).unwrap().ino()
}

impl TempNetns {
    /// A new namespace with `lo` up and `address` (with its prefix, e.g. `10.250.0.1/24`) on
    /// `lo`; `None` when not root (the test is then skipped).
    pub(crate) fn new(address: &str) -> Option<TempNetns> {
        if !crate::test_support::is_root() {
            return None;
        }
        let machine = netns_inode("/proc/thread-self/ns/net");
        let address = address.to_string();
        let netns = std::thread::spawn(move || {
            unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
            // Children of this thread start in its namespace.
            for args in [
                vec!["link", "set", "lo", "up"],
                vec!["addr", "add", address.as_str(), "dev", "lo"],
            ] {
                let status = Command::new("ip").args(&args).status().expect("run ip");
                assert!(status.success(), "ip {args:?} failed");
            }
            let fd: OwnedFd = fs::File::open("/proc/thread-self/ns/net").unwrap().into();
            let inode = netns_inode("/proc/thread-self/ns/net");
            TempNetns { fd, inode }
        })
        .join()
        .unwrap();
        assert_ne!(
            netns.inode, machine,
            "the test namespace is not the machine's"
        );
        assert_eq!(
            netns_inode("/proc/thread-self/ns/net"),
            machine,
            "making a namespace must not move the test's own thread"
        );
        Some(netns)
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Drops the handle and checks no thread of this process is left in the namespace and no
    /// descriptor of it is open (sockets made in it are the caller's to close first).
    pub(crate) fn close_and_check(self) {
        let inode = self.inode;
        drop(self.fd);
        let wanted = format!("net:[{inode}]");
        for task in fs::read_dir("/proc/self/task").unwrap().flatten() {
            // A thread may exit while we look; only the ones still there count.
            if let Ok(link) = fs::read_link(task.path().join("ns/net")) {
                assert_ne!(link.to_string_lossy(), wanted, "a thread is still inside");
            }
        }
        for fd in fs::read_dir("/proc/self/fd").unwrap().flatten() {
            if let Ok(link) = fs::read_link(fd.path()) {
                assert_ne!(link.to_string_lossy(), wanted, "a handle is still open");
            }
        }
    }

    /// Runs `work` inside the namespace.
    pub(crate) fn run<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        super::threads::in_netns(self.fd(), work).expect("setns into the test namespace")
    }
}
