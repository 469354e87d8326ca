#!/usr/bin/env bash
# kiln push/pull vs skopeo copy, side by side, against a local docker-registry, in one run.
#
#   bench/registry.sh            # KILN=/path/to/kiln to pick the binary
#
# 1. An image of ~300 MB (one layer of random, incompressible bytes plus a small one) is
#    built by kiln and exported as an OCI layout, so both tools push the same blobs.
# 2. Push: `kiln push` to one repository vs `skopeo copy oci:… docker://…` to another, on
#    the same registry (Debian's docker-registry, distribution 2.8, on 127.0.0.1 at a free
#    port, storage in the temporary directory). Then a second, no-op `kiln push`: it must
#    transfer no layer (checked from its JSON report).
# 3. Pull: `kiln pull` into a fresh state root vs `skopeo copy docker://… oci:…` into a
#    fresh layout directory.
#
# Every figure is the median of $RUNS runs (default 3) of the whole command's wall-clock
# time; each run starts from an empty registry repository (push) or an empty destination
# (pull). The ratio is kiln's time over skopeo's: below 1.00 kiln is faster.
#
# Knobs (environment): KILN, RUNS, SIZE_MB. Exit status: 0 when every command succeeded and
# the second push sent no layer, 1 otherwise.

set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_init registry
RUNS=${RUNS:-3}
SIZE_MB=${SIZE_MB:-300}

need_kiln
need_tools docker-registry skopeo python3

work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-registry.XXXXXX")
registry_pid=
cleanup() {
    set +e
    [[ -n $registry_pid ]] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# A fresh registry (new port, empty storage) for every run: nothing to mount, nothing to
# skip, for either tool (skopeo's blob-info cache would otherwise mount from the last run).
start_registry() {
    if [[ -n $registry_pid ]]; then
        kill "$registry_pid" 2>/dev/null
        wait "$registry_pid" 2>/dev/null || true
    fi
    rm -rf "$work/registry"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    addr=127.0.0.1:$port
    printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n' \
        "$work/registry" "$addr" >"$work/registry.yml"
    docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
    registry_pid=$!
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
        sleep 0.1
    done
}

echo "building a ${SIZE_MB} MB image…" >&2
project=$work/project
mkdir -p "$project"
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$project/blob.bin"
cat >"$project/kiln.kdl" <<'EOF'
image "big" {
    from "scratch"
    copy "blob.bin" "/data/blob.bin"
    copy "kiln.kdl" "/data/kiln.kdl"
}
EOF
root=$work/root
KILN_ROOT=$root "$KILN" build -f "$project/kiln.kdl" >/dev/null 2>&1 || die "kiln build failed"
KILN_ROOT=$root "$KILN" export big --format oci-dir -o "$work/layout" >/dev/null \
    || die "kiln export failed"
rm -f "$project/blob.bin"

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

kiln_push=() skopeo_push=() kiln_noop=() kiln_pull=() skopeo_pull=()
for run in $(seq "$RUNS"); do
    start_registry
    # Push, each run to repositories the registry has never seen (no blob is there yet);
    # kiln's mount hints are cleared so it uploads rather than mounts from the last run.
    rm -rf "$root/store/kiln/registry-blobs"
    t0=$(now)
    KILN_ROOT=$root "$KILN" push big "$addr/kiln$run/big:1" --format json >"$work/push.json" 2>/dev/null \
        || die "kiln push failed"
    t1=$(now)
    skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout:big" "docker://$addr/skopeo$run/big:1" \
        || die "skopeo copy (push) failed"
    t2=$(now)
    KILN_ROOT=$root "$KILN" push big "$addr/kiln$run/big:1" --format json >"$work/noop.json" 2>/dev/null \
        || die "second kiln push failed"
    t3=$(now)
    sent=$(python3 -c "import json; print(json.load(open('$work/noop.json'))['layers']['transferred'])")
    [[ $sent == 0 ]] || die "the second push sent $sent layers"
    kiln_push+=("$(elapsed "$t0" "$t1")") skopeo_push+=("$(elapsed "$t1" "$t2")")
    kiln_noop+=("$(elapsed "$t2" "$t3")")

    # Pull into empty destinations.
    rm -rf "$work/pulled-root" "$work/pulled-layout"
    t0=$(now)
    KILN_ROOT=$work/pulled-root "$KILN" pull "$addr/kiln$run/big:1" >/dev/null 2>&1 || die "kiln pull failed"
    t1=$(now)
    skopeo copy --quiet --src-tls-verify=false "docker://$addr/skopeo$run/big:1" "oci:$work/pulled-layout:big" \
        || die "skopeo copy (pull) failed"
    t2=$(now)
    kiln_pull+=("$(elapsed "$t0" "$t1")") skopeo_pull+=("$(elapsed "$t1" "$t2")")
    echo "run $run: push kiln ${kiln_push[-1]}s skopeo ${skopeo_push[-1]}s (no-op ${kiln_noop[-1]}s); pull kiln ${kiln_pull[-1]}s skopeo ${skopeo_pull[-1]}s" >&2
done

row() {
    local k s
    k=$(median "${@:2:$RUNS}")
    s=$(median "${@:$((RUNS + 2)):$RUNS}")
    printf '%-26s %10s %10s %8s\n' "$1" "${k}s" "${s}s" "$(python3 -c "print(f'{$k / $s:.2f}')")"
}
echo
printf 'registry bench: a %s MB image, median of %s runs, 127.0.0.1 docker-registry\n' "$SIZE_MB" "$RUNS"
printf '%-26s %10s %10s %8s\n' "" "kiln" "skopeo" "ratio"
row "push (cold)" "${kiln_push[@]}" "${skopeo_push[@]}"
row "pull (cold)" "${kiln_pull[@]}" "${skopeo_pull[@]}"
printf '%-26s %10s %10s %8s\n' "push again (no-op)" "$(median "${kiln_noop[@]}")s" "-" "-"
echo "the second push transferred 0 layers"
