#!/usr/bin/env bash
# `kiln up -d` and `kiln down` of a generated 20-container, 3-network project.
#
#   sudo bench/up.sh             # KILN=/path/to/kiln to pick the binary
#   RUNS=2 sudo -E bench/up.sh   # a quick smoke run
#   N=1000 sudo -E bench/up.sh   # scale mode: N containers (2..2000), one round by default
#
# The project (written by this script, in a temporary directory):
#   - one image from the host's `sleep` (`host-binary "/bin/sleep"`), built once beforehand
#     with `kiln build -f` so no timed command builds;
#   - networks n1, n2, n3 (10.204.1-3.0/24);
#   - containers s01..s20 running `sleep infinity`, s_i on network n((i-1) mod 3 + 1), and
#     every fourth (s04, s08, s12, s16, s20) on the next network as well;
#   - s11 depends-on s01, s12 depends-on s11, s20 depends-on s10 (condition "started"):
#     three start waves.
#   The names are not hexadecimal on purpose: `kiln up` looks an instance up by name *or id
#   prefix*, so an instance named like `c12` can be taken for another container whose id
#   starts with c12 (that container is then removed; see bench/README.md).
# Per round ($RUNS rounds, default 5, after one warm-up round that is not counted):
#   up      `kiln up -d -f FILE` from nothing (networks, 20 containers, 25 attachments)
#   no-op   `kiln up -d -f FILE` again on the running project: everything unchanged
#   down    `kiln down -f FILE` (containers, networks, kiln's host namespace)
# Medians. Goals: up < 3 s, down < 2 s. The no-op is printed (no goal).
# Scale mode (N set, 2..2000): containers s0001..sN running `sleep infinity`, 250 to a
# network (n1, n2, ... on 10.205.k.0/24), no dependencies (one wave); RUNS defaults to 1
# and there is no warm-up round. Goals: N=1000 up <= 15 s, down <= 5 s (scaled linearly for
# other N); every kiln command is bounded by a timeout of 20 s + 0.1 s per container.
# After each up the script checks that 20 containers run; after the no-op, that it said
# "unchanged" for all 20; after each down, that `kiln ps -a` is empty.
#
# Isolation: everything under one `mktemp -d` directory (kiln's --root too), removed by an
# EXIT trap (also on Ctrl-C / SIGTERM) after `kiln down`; the trap then checks that the
# machine's interfaces and namespaces are as before and that no mount, process or kiln cgroup
# of the run is left. Exit status 0 when every command succeeded, goals met or not.

set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_init up
N=${N:-}
if [[ -n $N ]]; then
    [[ $N =~ ^[0-9]+$ ]] && ((N >= 2 && N <= 2000)) || { echo "bench/up.sh: N must be 2..2000" >&2; exit 1; }
    RUNS=${RUNS:-1}
else
    RUNS=${RUNS:-5}
fi

need_root "containers and networks"
need_kiln
need_tools python3 ip findmnt

machine_snapshot

work=$(bench_workdir up)
root=$work/kiln
file=$work/project/kiln.kdl
kiln() { "$KILN" --root "$root" "$@"; }
cgroup_hash=
# kiln's cgroups for this --root live under /sys/fs/cgroup/*/kiln/HASH (HASH from the root's
# path); read it from a running container of ours, to check at exit that it is gone.
cgroup_hash_of() {
    local pid
    pid=$(kiln ps --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["pid"])')
    sed -n 's#^[0-9]*:[^:]*:.*/kiln/\([0-9a-f]*\)/.*#\1#p' "/proc/$pid/cgroup" | head -1
}
driver=

cleanup() {
    local status=$?
    set +e
    trap - INT TERM
    if [[ -n $driver ]]; then
        # A kiln command in flight first, then the driver itself.
        for child in $(pgrep -P "$driver" 2>/dev/null); do kill "$child" 2>/dev/null; done
        kill "$driver" 2>/dev/null
        wait "$driver" 2>/dev/null
    fi
    if [[ -d $root ]]; then
        kiln down -f "$file" >/dev/null 2>&1
        local ids
        ids=$(kiln_ids "$root")
        # shellcheck disable=SC2086
        [[ -n $ids ]] && kiln rm -f $ids >/dev/null 2>&1
    fi
    unmount_under "$work"
    local left=0
    machine_left "$work" "$cgroup_hash" || left=1
    remove_tree "$work"
    if ((left == 0)); then
        echo "cleanup: nothing left (namespaces, machine interfaces, mounts, processes, cgroups)"
    else
        status=1
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

print_machine
echo "kiln: $KILN"

mkdir -p "$work/project"
python3 - "$file" "$N" <<'PY'
import sys
out = ['project "upbench"', "",
       'image "sleeper" {', '    from "scratch"', '    host-binary "/bin/sleep"',
       '    cmd "sleep" "infinity"', "}", ""]
if sys.argv[2]:
    n = int(sys.argv[2])
    nets = (n + 249) // 250
    for k in range(1, nets + 1):
        out.append(f'network "n{k}" subnet="10.205.{k}.0/24"')
    out.append("")
    for i in range(1, n + 1):
        out.append(f'container "s{i:04}" image="sleeper" {{')
        out.append(f'    network "n{(i - 1) // 250 + 1}"')
        out.append("}")
    open(sys.argv[1], "w").write("\n".join(out) + "\n")
    sys.exit(0)
for n in (1, 2, 3):
    out.append(f'network "n{n}" subnet="10.204.{n}.0/24"')
out.append("")
depends = {11: "s01", 12: "s11", 20: "s10"}
for i in range(1, 21):
    out.append(f'container "s{i:02}" image="sleeper" {{')
    first = (i - 1) % 3 + 1
    out.append(f'    network "n{first}"')
    if i % 4 == 0:
        out.append(f'    network "n{first % 3 + 1}"')
    if i in depends:
        out.append(f'    depends-on "{depends[i]}" condition="started"')
    out.append("}")
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
kiln build -f "$file" >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; die "kiln build failed"; }
kiln run -d --name probe sleeper sleep infinity >/dev/null
cgroup_hash=$(cgroup_hash_of)
kiln rm -f probe >/dev/null

status=0
python3 - "$KILN" "$root" "$file" "$RUNS" "$N" <<'PY' &
import json, statistics, subprocess, sys, time

kiln, root, file, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
scale = int(sys.argv[5]) if sys.argv[5] else None
count = scale or 20
limit = 20 + 0.1 * count
K = [kiln, "--root", root]
failures = []


def load():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def timed(*args):
    start = time.perf_counter()
    try:
        done = subprocess.run([*K, *args], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        print(f"kiln {' '.join(args)}: no answer within {limit:.0f} s", *failures, sep="\n  ")
        raise SystemExit(1)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        failures.append(f"kiln {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
    return elapsed, done


def running():
    done = subprocess.run([*K, "ps", "-a", "--format", "json"], capture_output=True, text=True)
    return [c for c in json.loads(done.stdout)] if done.returncode == 0 else None


def round_():
    up, _ = timed("up", "-d", "-f", file)
    ps = running()
    states = sorted({c["state"] for c in ps or []})
    if ps is None or len(ps) != count or states != ["running"]:
        failures.append(f"after up: {len(ps or [])} containers, states {states}")
    noop, done = timed("up", "-d", "-f", file)
    unchanged = sum(1 for line in done.stderr.splitlines() if line.rstrip().endswith("unchanged"))
    if unchanged != count:
        failures.append(f"no-op up: {unchanged} of {count} said unchanged:\n{done.stderr[-2000:]}")
    down, _ = timed("down", "-f", file)
    if running() != []:
        failures.append("after down: containers left")
    return up, noop, down


if scale is None:
    round_()  # warm-up
    if failures:
        print("warm-up failed:", *failures, sep="\n  ")
        sys.exit(1)
networks = f"{(scale + 249) // 250} network(s)" if scale else "3 networks"
print(f"\n{runs} rounds of up / no-op up / down, {count} containers on {networks}"
      f" (load average before: {load()})")
times = {"up": [], "no-op up": [], "down": []}
for _ in range(runs):
    for name, t in zip(times, round_()):
        times[name].append(t)
print(f"load average after: {load()}")
for name in times:
    print(f"   {name:9} " + " ".join(f"{t:.2f}" for t in times[name]) + " s")
goals = {"up": 3.0, "no-op up": None, "down": 2.0}
if scale:
    goals = {"up": 15.0 * scale / 1000, "no-op up": None, "down": 5.0 * scale / 1000}
    for name in times:
        per = statistics.median(times[name]) / scale * 1000
        print(f"   {name:9} {per:6.1f} ms per container")
print()
print(f"   {'command':9} {'median s':>9} {'best s':>7}   goal")
for name, goal in goals.items():
    med = statistics.median(times[name])
    verdict = "" if goal is None else f"< {goal:.1f} s   {'PASS' if med < goal else 'FAIL'}"
    print(f"   {name:9} {med:9.2f} {min(times[name]):7.2f}   {verdict}")
if failures:
    print(f"\n{len(failures)} check(s) failed:", *failures[:10], sep="\n  ")
    sys.exit(1)
PY
driver=$!
wait "$driver" || status=$?
driver=
exit $status
