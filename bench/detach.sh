#!/usr/bin/env bash
# Detached containers: start N with `run -d`, then remove them one by one with `rm -f`;
# kiln vs podman vs runc, in the same run, interleaved.
#
#   sudo bench/detach.sh            # KILN=/path/to/kiln to pick the binary
#   N=10 ROUNDS=1 sudo -E bench/detach.sh   # a quick smoke run
#
# The image is built by kiln: `image "tools" { from "scratch"; host-binary "/bin/sleep";
# cmd "sleep" "1000" }`, whose pid 1 catches no signal (so a stop is a SIGKILL for all three).
#   kiln    kiln --root R run -d --name dI tools          then  kiln --root R rm -f dI
#   podman  podman … run -d --network none --name pI localhost/tools:latest
#                                                        then  podman … rm -f -t 0 pI
#           (storage vfs, runtime runc, cgroupfs; `-t 0`: no stop timeout, like kiln's
#           `rm -f`, which SIGKILLs)
#   runc    runc --root S run -d --bundle B rI            then  runc --root S delete -f rI
#           (B = `kiln bundle tools B`; runc keeps no supervisor: nothing waits for the
#           container, so it is the floor)
# Every command gets stdin, stdout and stderr from/to /dev/null or a file (a detached
# container inherits them: a pipe would never reach EOF).
#
# $ROUNDS rounds (default 3), each: for every tool in an order that rotates per round,
# N (default 50) `run -d` back to back, then N `rm -f` back to back, each timed on its own.
# Printed: per tool, the median over rounds of the N-start and N-removal totals, rm/run
# (goal for kiln: ≤ 1, removing takes no longer than starting), and kiln's ratio to each peer.
#
# Isolation: everything lives in one temporary directory (under $TMPDIR, default /tmp),
# removed at exit after every container of the three tools is removed.
# Exit status: 0 when every command succeeded (whether or not the goal is met), 1 otherwise.

set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_init detach
N=${N:-50}
ROUNDS=${ROUNDS:-3}

need_root "containers with namespaces and cgroups"
need_kiln
need_tools runc podman python3 findmnt
((N >= 1 && N <= 200)) || die "N must be 1..200"
((ROUNDS >= 1 && ROUNDS <= 10)) || die "ROUNDS must be 1..10"

work=$(bench_workdir detach)
podman_storage "$work"

cleanup() {
    set +e
    kiln_ids "$work/kiln" | xargs -r "$KILN" --root "$work/kiln" rm -f >/dev/null 2>&1
    for id in $(runc --root "$work/runc" list -q 2>/dev/null); do
        runc --root "$work/runc" delete -f "$id" >/dev/null 2>&1
    done
    if [[ -d $work/podman/root ]]; then
        podman "${podman_args[@]}" rm -a -f -t 0 >/dev/null 2>&1
        podman "${podman_args[@]}" rmi -a -f >/dev/null 2>&1
    fi
    unmount_under "$work"
    remove_tree "$work"
}
trap cleanup EXIT

echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kiln: $KILN"
echo "runc: $(runc --version | head -1); podman: $(podman --version)"

cat >"$work/kiln.kdl" <<'KDL'
image "tools" {
    from "scratch"
    host-binary "/bin/sleep"
    cmd "sleep" "1000"
}
KDL
quiet "$KILN" --root "$work/kiln" build -f "$work/kiln.kdl"
quiet "$KILN" --root "$work/kiln" bundle tools "$work/bundle"
quiet "$KILN" --root "$work/kiln" export tools -o "$work/tools.tar" --format docker-archive
mkdir -p "$work/runc"
quiet podman "${podman_args[@]}" load -i "$work/tools.tar"

status=0
python3 - "$KILN" "$work" "$N" "$ROUNDS" "${podman_args[@]}" <<'PY' || status=$?
import statistics, subprocess, sys, time

kiln, work, n, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
podman_args = sys.argv[5:]
failures = []
k = [kiln, "--root", f"{work}/kiln"]
p = ["podman", *podman_args]
r = ["runc", "--root", f"{work}/runc"]
tools = {
    "kiln": (lambda i: [*k, "run", "-d", "--name", f"d{i}", "tools"],
             lambda i: [*k, "rm", "-f", f"d{i}"]),
    "podman": (lambda i: [*p, "run", "-d", "--network", "none", "--name", f"p{i}",
                          "localhost/tools:latest"],
               lambda i: [*p, "rm", "-f", "-t", "0", f"p{i}"]),
    "runc": (lambda i: [*r, "run", "-d", "--bundle", f"{work}/bundle", f"r{i}"],
             lambda i: [*r, "delete", "-f", f"r{i}"]),
}


def timed(argv):
    start = time.perf_counter()
    with open(f"{work}/out.log", "wb") as out:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        failures.append(f"{' '.join(argv[:1] + argv[-3:])}: exit {done.returncode}: "
                        + open(f"{work}/out.log", errors="replace").read().strip()[-300:])
    return elapsed


def load():
    return " ".join(open("/proc/loadavg").read().split()[:3])


# A warm-up container each (page cache, podman's first-run setup); not counted.
for name, (run, rm) in tools.items():
    timed(run("w"))
    timed(rm("w"))
if failures:
    print("warm-up failed:", *failures, sep="\n  ")
    sys.exit(1)

names = list(tools)
starts = {t: [] for t in names}
removals = {t: [] for t in names}
print(f"\n{rounds} round(s): per tool, {n} × run -d then {n} × rm -f (order rotates)")
print(f"load average before: {load()}")
for rnd in range(rounds):
    order = names[rnd % 3:] + names[:rnd % 3]
    for name in order:
        run, rm = tools[name]
        starts[name].append(sum(timed(run(i)) for i in range(n)))
        removals[name].append(sum(timed(rm(i)) for i in range(n)))
        if failures:
            break
    if failures:
        break
print(f"load average after:  {load()}")
if failures:
    print(f"\n{len(failures)} command(s) failed:", *failures[:10], sep="\n  ")
    sys.exit(1)

print(f"\n{'tool':8} {'run -d (s)':>11} {'rm -f (s)':>10} {'ms/rm':>7} {'rm/run':>7}"
      f" {'rm: kiln/peer':>14}")
med = {t: (statistics.median(starts[t]), statistics.median(removals[t])) for t in names}
for name in names:
    s, d = med[name]
    ratio = "" if name == "kiln" else f"{med['kiln'][1] / d:13.2f}×"
    print(f"{name:8} {s:11.2f} {d:10.2f} {d / n * 1000:7.1f} {d / s:7.2f} {ratio:>14}")
s, d = med["kiln"]
print(f"\ngoal: kiln's {n} × rm -f ≤ its {n} × run -d: {d:.2f} s vs {s:.2f} s  "
      + ("PASS" if d <= s else "FAIL"))
print("all rounds (s): " + "; ".join(
    f"{t} run " + "/".join(f"{x:.2f}" for x in starts[t])
    + " rm " + "/".join(f"{x:.2f}" for x in removals[t]) for t in names))
PY

left=$(kiln_ids "$work/kiln" || true)
[[ -z $left ]] || echo "kiln left containers: $left"
left=$(runc --root "$work/runc" list -q)
[[ -z $left ]] || echo "runc left containers: $left"
left=$(podman "${podman_args[@]}" ps -a -q)
[[ -z $left ]] || echo "podman left containers: $left"
exit $status
