#!/usr/bin/env bash
# What one detached container's keeper costs: kiln's supervisor (`kiln-supervise`, beside
# kiln; `kiln __supervise` when it is missing) vs podman's conmon, in the same run, while
# each container prints a line of log every 100 ms.
#
#   sudo bench/supervisor.sh            # KILN=/path/to/kiln to pick the binary
#   N=5 sudo -E bench/supervisor.sh     # a quick smoke run
#
# The image is built by kiln: `image "tools" { from "scratch"; host-binary "/bin/sh";
# host-binary "/bin/sleep"; cmd "sh" "-c" LOOP }` where LOOP prints `line N` every 100 ms,
# exported to podman (`kiln export --format docker-archive`, `podman load`). Then N
# (default 20) containers with each tool, started alternately:
#   kiln    kiln --root R run -d --name kI tools      (log: the container's log.jsonl)
#   podman  podman --root … --storage-driver vfs run -d --network none --log-driver
#           k8s-file --name pI localhost/tools:latest (one conmon per container, runc)
# and, once all run, for every kiln supervisor and every conmon of this run (found by its
# command line, which names this run's directory): PSS, private memory and RSS from
# /proc/PID/smaps_rollup, threads from /proc/PID/status, measured after the containers
# have logged for a few seconds. PSS divides each shared page among
# the processes that map it, so N supervisors of one binary share its text: that is what a
# machine with N containers pays per container. Printed: the mean per keeper, side by side,
# and kiln's ratio to conmon. Goal: kiln's PSS ≤ conmon's.
#
# Isolation: everything lives in one temporary directory (under $TMPDIR, default /tmp),
# removed at exit after both tools' containers are removed.
# Exit status: 0 when every command succeeded (whether or not the goal is met), 1 otherwise.

set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_init supervisor
N=${N:-20}

need_root "containers with namespaces and cgroups"
need_kiln
need_tools podman conmon python3 findmnt
((N >= 1 && N <= 100)) || die "N must be 1..100"

work=$(bench_workdir supervisor)
podman_storage "$work"

cleanup() {
    set +e
    kiln_ids "$work/kiln" | xargs -r "$KILN" --root "$work/kiln" rm -f >/dev/null 2>&1
    if [[ -d $work/podman/root ]]; then
        podman "${podman_args[@]}" rm -a -f -t 0 >/dev/null 2>&1
        podman "${podman_args[@]}" rmi -a -f >/dev/null 2>&1
    fi
    unmount_under "$work"
    # podman's last process may still be writing its database a moment after `rm`.
    remove_tree "$work" 2>/dev/null || { sleep 1; remove_tree "$work"; }
}
trap cleanup EXIT

echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kiln: $KILN ($(stat -c %s "$KILN") bytes)"
if [[ -x $(dirname "$KILN")/kiln-supervise ]]; then
    echo "supervisor: $(dirname "$KILN")/kiln-supervise ($(stat -c %s "$(dirname "$KILN")/kiln-supervise") bytes)"
else
    echo "supervisor: kiln __supervise (no kiln-supervise beside $KILN)"
fi
echo "podman: $(podman --version); conmon: $(conmon --version | head -1)"

cat >"$work/kiln.kdl" <<'KDL'
image "tools" {
    from "scratch"
    host-binary "/bin/sh"
    host-binary "/bin/sleep"
    cmd "sh" "-c" "i=0; while :; do i=$((i+1)); echo \"line $i\"; sleep 0.1; done"
}
KDL
quiet "$KILN" --root "$work/kiln" build -f "$work/kiln.kdl"
quiet "$KILN" --root "$work/kiln" export tools -o "$work/tools.tar" --format docker-archive
quiet podman "${podman_args[@]}" load -i "$work/tools.tar"

for ((i = 0; i < N; i++)); do
    quiet "$KILN" --root "$work/kiln" run -d --name "k$i" tools
    quiet podman "${podman_args[@]}" run -d --network none --log-driver k8s-file --name "p$i" \
        localhost/tools:latest
done
# Let both settle (podman's conmon finishes its start-up work after `run -d` returns) and
# log for a while.
sleep 5

status=0
python3 - "$work" "$N" <<'PY' || status=$?
import os, statistics, sys

work, n = sys.argv[1], int(sys.argv[2])


names = set()


def keepers():
    """(kind, pid) of every kiln supervisor and conmon of this run."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            comm = open(f"/proc/{pid}/comm").read().strip()
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv]
        if work not in " ".join(args):
            continue
        if "__supervise" in args:
            names.add(comm)
            found.append(("kiln", int(pid)))
        elif comm == "conmon":
            found.append(("conmon", int(pid)))
    return found


def measure(pid):
    fields = {}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
            fields[parts[0][:-1]] = int(parts[1])
    threads = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status")
                   if l.startswith("Threads:"))
    return {
        "pss": fields.get("Pss", 0),
        "private": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
        "rss": fields.get("Rss", 0),
        "threads": threads,
    }


seen = {"kiln": [], "conmon": []}
for kind, pid in keepers():
    try:
        seen[kind].append(measure(pid))
    except OSError:
        pass
print(f"\n{n} containers each; keepers found: kiln {len(seen['kiln'])}"
      f" ({', '.join(sorted(names))}), conmon {len(seen['conmon'])}")
if not seen["kiln"] or not seen["conmon"]:
    print("missing keepers: nothing to compare")
    sys.exit(1)
mean = {k: {f: statistics.mean(m[f] for m in v) for f in v[0]} for k, v in seen.items()}
label = {"kiln": "/".join(sorted(names)), "conmon": "conmon"}
print(f"\n{'keeper':15} {'PSS kB':>8} {'private kB':>11} {'RSS kB':>8} {'threads':>8}")
for kind in ("kiln", "conmon"):
    m = mean[kind]
    print(f"{label[kind]:15} {m['pss']:8.0f} {m['private']:11.0f} {m['rss']:8.0f}"
          f" {m['threads']:8.1f}")
k, c = mean["kiln"], mean["conmon"]
print(f"{'kiln/conmon':15} {k['pss'] / c['pss']:7.2f}× {k['private'] / max(c['private'], 1):10.2f}×"
      f" {k['rss'] / c['rss']:7.2f}× {k['threads'] / c['threads']:7.2f}×")
print(f"\ngoal: kiln's PSS ≤ conmon's: {k['pss']:.0f} kB vs {c['pss']:.0f} kB  "
      + ("PASS" if k["pss"] <= c["pss"] else "FAIL"))
PY
# The same workload on both sides: lines each keeper has logged for its first container.
echo "lines logged by the first container: kiln $("$KILN" --root "$work/kiln" logs k0 2>/dev/null | wc -l)," \
    "podman $(podman "${podman_args[@]}" logs p0 2>/dev/null | wc -l)"
exit $status
