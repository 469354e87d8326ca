#!/usr/bin/env bash
# `copy … from="IMAGE"` vs `copy` from the context: one step copying the same 2-byte file,
# out of a large image and out of the project directory, side by side.
#
#   sudo bench/copy-from.sh         # KILN=/path/to/kiln to pick the binary
#   KILN_BEFORE=/path/to/other/kiln sudo -E bench/copy-from.sh   # a change's before, too
#   FILES=2000 SIZE_MB=30 RUNS=5 sudo -E bench/copy-from.sh      # a quick smoke run
#
# The source image `big:1`: bench/gen_context.py's tree (FILES, default 20,000 files;
# SIZE_MB, default 300 MB) copied to /data in one layer, and `small.txt` ("x\n") in another,
# built by its own project and tagged. The measured project, in another directory:
#   image "image"   { from "scratch"; copy "/small.txt" "/copied-N" from="big:1" }
#   image "context" { from "scratch"; copy "small.txt" "/copied-N" }
# N changes every round, so each build runs its step (a cache miss) and nothing else.
#
# $RUNS rounds (default 10), the tools and the two images in an order that rotates per round:
# `kiln build --format json IMAGE`, timed (wall) by a python3 driver, and the step's own
# duration as kiln reports it. The first round of each kiln is shown apart: there, `copy
# from=` also unpacks the source's layers into the state root (once; `run` steps and
# containers share them). Printed: medians of the other rounds and image/context.
# Goal: image/context <= 2 (a step costs what it copies, not what the source image holds).
#
# Isolation: everything lives in one temporary directory (under $TMPDIR, default /tmp),
# removed at exit. Exit status: 0 when every build succeeded (goal met or not), 1 otherwise.

set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_init copy-from
RUNS=${RUNS:-10}
FILES=${FILES:-20000}
SIZE_MB=${SIZE_MB:-300}

need_root "kiln's store keeps the images' owners"
need_kiln
need_tools python3 findmnt
((RUNS >= 2 && RUNS <= 100)) || die "RUNS must be 2..100"

work=$(bench_workdir copy-from)
cleanup() {
    set +e
    unmount_under "$work"
    remove_tree "$work"
}
trap cleanup EXIT

print_machine
echo "kiln: $KILN"
kilns=("$KILN")
names=(kiln)
if [[ -n ${KILN_BEFORE:-} ]]; then
    [[ -x $KILN_BEFORE ]] || die "no kiln binary at KILN_BEFORE=$KILN_BEFORE"
    echo "before: $KILN_BEFORE"
    kilns+=("$KILN_BEFORE")
    names+=(before)
fi

mkdir -p "$work/source" "$work/measured"
python3 "$here/gen_context.py" "$work/source/ctx" "$FILES" "$SIZE_MB"
printf 'x\n' >"$work/source/small.txt"
printf 'x\n' >"$work/measured/small.txt"
cat >"$work/source/kiln.kdl" <<'KDL'
project "source"
image "big" {
    from "scratch"
    copy "ctx/" "/data/"
    copy "small.txt" "/small.txt"
}
KDL
for i in "${!kilns[@]}"; do
    root=$work/root-${names[$i]}
    quiet "${kilns[$i]}" --root "$root" build -f "$work/source/kiln.kdl"
    quiet "${kilns[$i]}" --root "$root" tag source/big big:1
done
echo "source image: $FILES files, $(du -sm "$work/source/ctx" | cut -f1) MB in /data, and /small.txt"
echo

python3 - "$work" "$RUNS" "${names[@]}" -- "${kilns[@]}" <<'PY'
import json, statistics, subprocess, sys, time

work, runs = sys.argv[1], int(sys.argv[2])
cut = sys.argv.index("--")
names, kilns = sys.argv[3:cut], sys.argv[cut + 1:]
images = ["image", "context"]
kdl = f"{work}/measured/kiln.kdl"

def project(n):
    with open(kdl, "w") as f:
        f.write(f'''project "measured"
image "image" {{
    from "scratch"
    copy "/small.txt" "/copied-{n}" from="big:1"
}}
image "context" {{
    from "scratch"
    copy "small.txt" "/copied-{n}"
}}
''')

wall = {(t, i): [] for t in names for i in images}
step = {(t, i): [] for t in names for i in images}
first = {}
for n in range(runs):
    project(n)
    order = [(t, i) for t in names for i in images]
    shift = n % len(order)
    for tool, image in order[shift:] + order[:shift]:
        kiln = kilns[names.index(tool)]
        start = time.perf_counter()
        done = subprocess.run(
            [kiln, "--root", f"{work}/root-{tool}", "build", "--format", "json", "-f", kdl, image],
            stdin=subprocess.DEVNULL, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"{tool} build {image} failed:\n{done.stderr}")
        steps = json.loads(done.stdout)["steps"]
        copy = [s for s in steps if s.get("layer")]
        assert len(copy) == 1 and copy[0]["cache"] == "miss", steps
        if n == 0:
            first[(tool, image)] = (elapsed * 1000, copy[0]["duration_ms"])
        else:
            wall[(tool, image)].append(elapsed * 1000)
            step[(tool, image)].append(copy[0]["duration_ms"])

print("first round (copy from= unpacks the source's layers into the root, once):")
for tool in names:
    for image in images:
        w, s = first[(tool, image)]
        print(f"  {tool:7} {image:8} build {w:8.1f} ms   step {s:8.1f} ms")
print(f"median of the {runs - 1} other rounds (ms):")
print(f"  {'':7} {'':8} {'build':>9} {'step':>9}")
med = {}
for tool in names:
    for image in images:
        med[(tool, image)] = (statistics.median(wall[(tool, image)]),
                              statistics.median(step[(tool, image)]))
        w, s = med[(tool, image)]
        print(f"  {tool:7} {image:8} {w:9.1f} {s:9.1f}")
for tool in names:
    (wi, si), (wc, sc) = med[(tool, "image")], med[(tool, "context")]
    verdict = "met" if si <= 2 * sc else "NOT met"
    print(f"{tool}: image/context: build {wi / wc:.2f}x, step {si / sc:.2f}x "
          f"(goal: step <= 2x: {verdict})")
if "before" in names:
    print(f"copy from= step, before/kiln: "
          f"{med[('before', 'image')][1] / med[('kiln', 'image')][1]:.1f}x")
print(f"load average after: {' '.join(open('/proc/loadavg').read().split()[:3])}")
PY
