#!/usr/bin/env bash
# The attach cost alone: what `--network NET` adds to a container's start-to-exit time.
#
#   sudo bench/attach.sh                 # KILN=/path/to/kiln to pick the binary
#   sudo KILN_BEFORE=/path/to/old/kiln bench/attach.sh    # before and after, side by side
#
# Each binary gets a state root of its own with the image `tools` (`sh`, `true`, `sleep`), a
# network `bench` (a /24 of 10.202.x.0) and one idle container on it (`sleep`), as
# bench/net.sh has its iperf server. Then $ATTACH_N (default 30) rounds; each round runs, in
# an order that rotates from round to round so all see the same load:
#   kiln run --rm --network bench tools true      and      kiln run --rm tools true
# for each binary. The attach cost is the difference of the medians (goal: a few ms).
# Wall time by a python3 driver (time.perf_counter around subprocess.run).
#
# Isolation: everything lives in one temporary directory, removed at exit after the idle
# containers and the networks are removed. No traffic leaves kiln's namespaces.

set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_init attach
ATTACH_N=${ATTACH_N:-30}

need_root "containers, networks"
need_kiln
command -v python3 >/dev/null || die "python3 is not installed"

work=$(bench_workdir attach)
tools=(after "$KILN")
[[ -n ${KILN_BEFORE:-} ]] && tools+=(before "$KILN_BEFORE")

cleanup() {
    set +e
    for ((i = 0; i < ${#tools[@]}; i += 2)); do
        root=$work/${tools[i]}
        "${tools[i + 1]}" --root "$root" rm -f idle >/dev/null 2>&1
        "${tools[i + 1]}" --root "$root" network rm bench >/dev/null 2>&1
    done
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/kiln.kdl" <<'KDL'
image "tools" {
    from "scratch"
    host-binary "/bin/sh" "/bin/true" "/bin/sleep"
    cmd "true"
}
KDL
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
subnet=$((RANDOM % 200 + 20))
for ((i = 0; i < ${#tools[@]}; i += 2)); do
    name=${tools[i]} kiln=${tools[i + 1]} root=$work/${tools[i]}
    echo "$name: $kiln"
    "$kiln" --root "$root" build -f "$work/kiln.kdl" >"$work/setup.log" 2>&1 ||
        { cat "$work/setup.log"; die "build failed"; }
    "$kiln" --root "$root" network create bench --subnet "10.202.$((subnet + i / 2)).0/24" \
        >/dev/null
    "$kiln" --root "$root" run -d --name idle --network bench tools sleep 100000 >/dev/null
done

python3 - "$work" "$ATTACH_N" "${tools[@]}" <<'PY'
import statistics, subprocess, sys, time

work, n = sys.argv[1], int(sys.argv[2])
tools = dict(zip(sys.argv[3::2], sys.argv[4::2]))
cases = []
for name, kiln in tools.items():
    root = f"{work}/{name}"
    cases.append((name, "network", [kiln, "--root", root, "run", "--rm", "--network", "bench", "tools", "true"]))
    cases.append((name, "none", [kiln, "--root", root, "run", "--rm", "tools", "true"]))
ms = {(t, c): [] for t, c, _ in cases}
for i in range(n):
    for t, c, cmd in cases[i % len(cases):] + cases[:i % len(cases)]:
        start = time.perf_counter()
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
        elapsed = (time.perf_counter() - start) * 1000
        if done.returncode != 0:
            sys.exit(f"{t} {c}: exit {done.returncode}: {done.stderr.decode(errors='replace')}")
        ms[(t, c)].append(elapsed)
print(f"\n{n} rounds; medians (best) in ms")
print(f"{'binary':8} {'--network':>14} {'none':>14} {'attach cost':>12}")
for t in tools:
    net, none = statistics.median(ms[(t, 'network')]), statistics.median(ms[(t, 'none')])
    print(f"{t:8} {net:8.1f} ({min(ms[(t, 'network')]):5.1f}) {none:8.1f} ({min(ms[(t, 'none')]):5.1f}) {net - none:10.1f}")
PY
