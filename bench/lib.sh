# shellcheck shell=bash
# What every bench script starts and ends with, in one place. Sourced, never run:
#
#   here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
#   source "$here/lib.sh"
#   bench_init run                        # messages say `bench/run.sh: …`; KILN defaulted
#   need_root "containers with namespaces and cgroups"
#   need_kiln                             # $KILN executable, made absolute
#   need_tools runc podman python3 findmnt
#   work=$(bench_workdir run)             # ${TMPDIR:-/tmp}/kiln-run-bench.XXXXXX
#   …
#   cleanup() { …; unmount_under "$work"; remove_tree "$work"; }
#
# For scripts that make networks: `machine_snapshot` before anything is made, and
# `machine_left "$work" "$cgroup_hash"` at exit, which prints a `LEFT:` line for each thing
# of the bench still there (the machine's interfaces or namespaces changed, mounts,
# processes, kiln cgroups) and fails when there is one.
#
# It only defines functions and two variables (KILN, bench_name); it starts nothing.

bench_init() {
    bench_name=$1
    KILN=${KILN:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../target/release/kiln}
}

die() {
    echo "bench/$bench_name.sh: $*" >&2
    exit 1
}

# need_root WHY
need_root() {
    [[ $(id -u) == 0 ]] || die "needs root ($1)"
}

need_kiln() {
    [[ -x $KILN ]] || die "no kiln binary at $KILN (cargo build --release, or set KILN=path)"
    KILN=$(cd "$(dirname "$KILN")" && pwd)/$(basename "$KILN")
}

# need_tools TOOL… [-- HOW-TO-INSTALL]
need_tools() {
    local hint=
    local tools=()
    while (($#)); do
        if [[ $1 == -- ]]; then
            hint=" ($2)"
            break
        fi
        tools+=("$1")
        shift
    done
    local tool
    for tool in "${tools[@]}"; do
        command -v "$tool" >/dev/null || die "$tool is not installed$hint"
    done
}

# bench_workdir NAME: a fresh directory for everything the bench makes.
bench_workdir() {
    mktemp -d "${TMPDIR:-/tmp}/kiln-$1-bench.XXXXXX"
}

# unmount_under DIR: every mount below DIR, deepest first.
unmount_under() {
    findmnt -rn -o TARGET | grep -F "$1/" | sort -r | while read -r target; do
        umount -l "$target"
    done
}

# remove_tree DIR: DIR and everything in it (read-only parts too).
remove_tree() {
    chmod -R u+w "$1" 2>/dev/null
    rm -rf "$1"
}

# print_machine: the CPUs and the load the figures were measured under.
print_machine() {
    echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
        "cpu pressure: $(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)"
}

# kiln_ids ROOT: the ids of every container of the state root ROOT, on one line.
kiln_ids() {
    "$KILN" --root "$1" ps -a --format json 2>/dev/null |
        python3 -c 'import json,sys; print(" ".join(c["id"] for c in json.load(sys.stdin)))' 2>/dev/null
}

# quiet COMMAND…: runs a setup command, printing its output only when it fails.
quiet() {
    "$@" >"$work/setup.log" 2>&1 || { cat "$work/setup.log" >&2; die "failed: $*"; }
}

# podman_storage DIR: sets podman_args, a podman of its own under DIR (vfs storage).
podman_storage() {
    podman_args=(--root "$1/podman/root" --runroot "$1/podman/run" --tmpdir "$1/podman/tmp"
        --storage-driver vfs)
}

machine_snapshot() {
    links_before=$(ip -o link | cut -d: -f2 | sort)
    netns_before=$(ip netns list | sort)
}

# machine_left WORK CGROUP_HASH: what the bench left (see the top); 0 when nothing.
machine_left() {
    local work=$1 cgroup_hash=$2 left=0
    [[ $(ip -o link | cut -d: -f2 | sort) == "$links_before" ]] ||
        { echo "LEFT: the machine's interfaces changed:"; diff <(echo "$links_before") <(ip -o link | cut -d: -f2 | sort); left=1; }
    [[ $(ip netns list | sort) == "$netns_before" ]] ||
        { echo "LEFT: network namespaces: $(ip netns list | tr '\n' ' ')"; left=1; }
    if grep -F "$work" /proc/self/mountinfo >/dev/null; then
        echo "LEFT: mounts under $work"; left=1
    fi
    local procs
    procs=$(pgrep -af -- "$work" || true)
    [[ -z $procs ]] || { echo "LEFT: processes: $procs"; left=1; }
    local cgroups
    cgroups=$([[ -z $cgroup_hash ]] || compgen -G "/sys/fs/cgroup/*/kiln/$cgroup_hash" || true)
    # shellcheck disable=SC2086
    [[ -z $cgroups ]] || { echo "LEFT: kiln cgroups:" $cgroups; left=1; }
    return "$left"
}
