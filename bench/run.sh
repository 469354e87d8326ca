#!/usr/bin/env bash
# kiln run vs runc run vs podman run: the start-to-exit time of a container running `true`,
# on the same image, in one run.
#
#   sudo bench/run.sh            # KILN=/path/to/kiln to pick the binary
#
# The image is built by kiln: `image "tools" { from "scratch"; host-binary "/bin/sh"
# "/bin/true"; cmd "true" }` (`cmd` only because `kiln bundle` takes no command: runc runs the
# bundle's args, which come from the image). Then:
#   kiln    kiln --root R run --rm tools true
#   runc    runc --root S run --bundle B ID </dev/null     (B = `kiln bundle tools B`;
#           `runc run` without -d destroys the container itself; a `runc delete -f ID`
#           follows, outside the timed part, in case it did not)
#   podman  podman --root --runroot --tmpdir --storage-driver vfs run --rm --network none
#           localhost/tools:latest true       (image from `kiln export --format docker-archive`
#           and `podman load`; runtime runc and cgroupfs from /etc/containers/containers.conf)
# Every command gets stdin from /dev/null and its output in a pipe.
#
# KILN_BEFORE=/path/to/other/kiln adds that binary as a fourth tool ("before", with a state
# root of its own, the same image built by it): a change's before and after figures side by
# side, measured in the same rounds under the same load.
#
# 1. Interleaved: $RUNS rounds (default 20), each runs the three tools once, in an order that
#    rotates from round to round so all see the same load; median and best wall time each.
#    Goals: kiln's median <= runc's, and <= 1/4 of podman's.
# 2. Sequential: $SEQ (default 100) runs of each tool back to back; total and mean per run.
# 3. Detached: 50 starts with `kiln run -d` (kiln only), then `kiln rm -f` of all of them.
#
# Wall time is measured by a small python3 driver (time.perf_counter around subprocess.run).
# The machine is shared: the load average and CPU pressure before and after are printed.
#
# Isolation: everything lives in one temporary directory (under $TMPDIR, default /tmp), removed
# at exit (podman's images removed first, mounts under it unmounted, then chmod -R u+w, rm -rf).
# Exit status: 0 when every run succeeded (whether or not the goals are met), 1 otherwise.

set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_init run
RUNS=${RUNS:-20}
SEQ=${SEQ:-100}

need_root "containers with namespaces and cgroups"
need_kiln
need_tools runc podman python3 findmnt

work=$(bench_workdir run)
podman_storage "$work"

cleanup() {
    set +e
    if [[ -d $work/podman/root ]]; then
        podman "${podman_args[@]}" rm -a -f >/dev/null 2>&1
        podman "${podman_args[@]}" rmi -a -f >/dev/null 2>&1
    fi
    unmount_under "$work"
    remove_tree "$work"
}
trap cleanup EXIT

print_machine
echo "kiln: $KILN"
echo "runc: $(runc --version | head -1); podman: $(podman --version)"

cat >"$work/kiln.kdl" <<'KDL'
image "tools" {
    from "scratch"
    host-binary "/bin/sh" "/bin/true" "/bin/sleep"
    cmd "true"
}
KDL
# Setup commands print only when they fail.
quiet "$KILN" --root "$work/kiln" build -f "$work/kiln.kdl"
if [[ -n ${KILN_BEFORE:-} ]]; then
    [[ -x $KILN_BEFORE ]] || die "no kiln binary at KILN_BEFORE=$KILN_BEFORE"
    echo "before: $KILN_BEFORE"
    quiet "$KILN_BEFORE" --root "$work/kiln-before" build -f "$work/kiln.kdl"
fi
quiet "$KILN" --root "$work/kiln" bundle tools "$work/bundle"
quiet "$KILN" --root "$work/kiln" export tools -o "$work/tools.tar" --format docker-archive
mkdir -p "$work/runc"
quiet podman "${podman_args[@]}" load -i "$work/tools.tar"

status=0
python3 - "$KILN" "$work" "$RUNS" "$SEQ" "${podman_args[@]}" <<'PY' || status=$?
import os, statistics, subprocess, sys, time

kiln, work, runs, seq = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
podman_args = sys.argv[5:]
serial = 0
failures = []


def kiln_cmd():
    return [kiln, "--root", f"{work}/kiln", "run", "--rm", "tools", "true"], None


def runc_cmd():
    global serial
    serial += 1
    cid = f"bench-{os.getpid()}-{serial}"
    after = ["runc", "--root", f"{work}/runc", "delete", "-f", cid]
    return ["runc", "--root", f"{work}/runc", "run", "--bundle", f"{work}/bundle", cid], after


def podman_cmd():
    return (["podman", *podman_args, "run", "--rm", "--network", "none",
             "localhost/tools:latest", "true"], None)


tools = {"kiln": kiln_cmd, "runc": runc_cmd, "podman": podman_cmd}
kiln_before = os.environ.get("KILN_BEFORE")
if kiln_before:
    tools["before"] = lambda: ([kiln_before, "--root", f"{work}/kiln-before", "run", "--rm",
                                "tools", "true"], None)


def timed(name):
    """One run of tool `name`: its wall time in seconds (start of the process to its exit)."""
    argv, after = tools[name]()
    start = time.perf_counter()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if after:
        subprocess.run(after, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    if done.returncode != 0:
        failures.append(f"{name}: exit {done.returncode}: {done.stderr.decode(errors='replace').strip()}")
    return elapsed


def load():
    return " ".join(open("/proc/loadavg").read().split()[:3])


# One warm-up run each (page cache, podman's first-run setup); not counted.
for name in tools:
    timed(name)
if failures:
    print("warm-up failed:", *failures, sep="\n  ")
    sys.exit(1)

names = list(tools)
print(f"\n1. interleaved: {runs} rounds, the {len(names)} tools once each per round (order rotates)")
print(f"   load average before: {load()}")
times = {n: [] for n in names}
for r in range(runs):
    order = names[r % len(names):] + names[:r % len(names)]
    for name in order:
        times[name].append(timed(name))
print(f"   load average after:  {load()}")
for name in names:
    print(f"   {name:7} " + " ".join(f"{t * 1000:.0f}" for t in times[name]) + " ms")

med = {n: statistics.median(times[n]) for n in names}
best = {n: min(times[n]) for n in names}
k = med["kiln"]
goal = {
    "kiln": ("—", None),
    "runc": ("kiln ≤ runc", k <= med["runc"]),
    "podman": ("kiln ≤ podman/4", k <= med["podman"] / 4),
    "before": ("kiln ≤ before", k <= med["before"]) if kiln_before else ("—", None),
}
print()
print(f"   {'tool':8} {'median ms':>10} {'best ms':>8} {'ratio vs kiln':>14}   {'target':17} result")
for name in names:
    target, ok = goal[name]
    result = "" if ok is None else ("PASS" if ok else "FAIL")
    print(f"   {name:8} {med[name] * 1000:10.1f} {best[name] * 1000:8.1f} "
          f"{med[name] / k:13.2f}×   {target:17} {result}")
print("   (ratio = the tool's median / kiln's median; best-of ratios: "
      + ", ".join(f"{n} {best[n] / best['kiln']:.2f}×" for n in names if n != "kiln") + ")")

print(f"\n2. sequential: {seq} runs of each tool back to back")
for name in names:
    before = load()
    start = time.perf_counter()
    for _ in range(seq):
        timed(name)
    total = time.perf_counter() - start
    print(f"   {name:7} {total:7.2f} s in all, {total / seq * 1000:6.1f} ms a run"
          f"   (load {before} → {load()})")
print("\n3. detached: 50 × `kiln run -d tools sleep 1000` (each returns once its supervisor"
      " reports the container started), then `kiln rm -f` of all 50")
root = f"{work}/kiln"
start = time.perf_counter()
ids = []
for i in range(50):
    out = subprocess.run([kiln, "--root", root, "run", "-d", "--name", f"d{i}", "tools",
                          "sleep", "1000"], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        failures.append(f"kiln run -d: {out.stderr.strip()}")
        break
    ids.append(out.stdout.strip())
started = time.perf_counter() - start
start = time.perf_counter()
if ids:
    out = subprocess.run([kiln, "--root", root, "rm", "-f", *[f"d{i}" for i in range(len(ids))]],
                         capture_output=True, text=True)
    if out.returncode != 0:
        failures.append(f"kiln rm -f: {out.stderr.strip()}")
removed = time.perf_counter() - start
print(f"   kiln    {len(ids)} started in {started:.2f} s ({started / max(len(ids), 1) * 1000:.1f} ms"
      f" each), removed in {removed:.2f} s   (load {load()})")

if failures:
    print(f"\n{len(failures)} run(s) failed:", *failures[:10], sep="\n  ")
    sys.exit(1)
PY

# Nothing may be left behind: no container in any of the three tools, no mount under $work.
left=$("$KILN" --root "$work/kiln" ps -a 2>&1 | tail -n +2 || true)
[[ -z $left ]] || echo "kiln left containers: $left"
left=$(runc --root "$work/runc" list -q)
[[ -z $left ]] || echo "runc left containers: $left"
left=$(podman "${podman_args[@]}" ps -a -q)
[[ -z $left ]] || echo "podman left containers: $left"
findmnt -rn -o TARGET | grep -F "$work/" && echo "mounts left under $work"
exit $status
