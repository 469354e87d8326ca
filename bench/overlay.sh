#!/usr/bin/env bash
# The overlay between simulated hosts against the bare kernel, and what simulating hosts
# costs `kiln up`.
#
#   sudo bench/overlay.sh            # KILN=/path/to/kiln to pick the binary
#   RUNS=1 UP_RUNS=1 sudo -E bench/overlay.sh      # a quick smoke run
#
# 1. Throughput: iperf3 (Debian's, put in an image with `host-binary`), `iperf3 -c ADDR -t
#    $DURATION -J` (default 5 s); the figure is end.sum_received.bits_per_second. Two set-ups,
#    interleaved, $RUNS rounds (default 3), medians:
#      vxlan   two bare network namespaces made here (kilnovl-a, kilnovl-b) joined by a veth
#              pair (192.0.2.1, 192.0.2.2), a VXLAN device in each (VNI 42, UDP 4789, its
#              MTU 1450) with 10.203.0.1 and 10.203.0.2: a bare VXLAN tunnel, the floor.
#      kiln    `kiln up` of two simulated hosts (m1, m2) joined by an overlay, a server
#              container on m2 (`iperf3 -s`), a client container on m1, and per round
#              `kiln exec client iperf3 -c SERVER ...`: container veth, bridge, VXLAN, the
#              simulated wire, VXLAN, bridge, veth.
#    Goal: kiln / vxlan >= 0.85.
# 2. `kiln up -d` of 30 containers: on 3 simulated hosts (10 each, on one overlay) and on
#    this machine alone (one bridge network), interleaved, $UP_RUNS rounds (default 3), each
#    followed by `kiln down`; medians of the wall time of `up`. Goal: hosts / one <= 2.
#
# Safety: the machine's own network namespace is never touched: the baseline's interfaces
# are made inside the namespaces made here, kiln's under its --root. An EXIT trap removes
# them, kiln's projects and the temporary directory, and checks that the machine's
# interfaces and namespaces are as before and nothing is mounted under the directory.
# Exit status: 0 when every measurement ran (whether or not the goals are met), 1 otherwise.

set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_init overlay
RUNS=${RUNS:-3}
UP_RUNS=${UP_RUNS:-3}
DURATION=${DURATION:-5}

NS_A=kilnovl-a
NS_B=kilnovl-b

need_root "network namespaces, containers"
need_kiln
need_tools iperf3 python3 ip findmnt -- "apt-get install -y iperf3 iproute2 python3"
for ns in $NS_A $NS_B; do
    [[ ! -e /run/netns/$ns ]] || die "namespace $ns exists already (a previous run?): ip netns del $ns"
done

machine_snapshot

work=$(bench_workdir overlay)
root=$work/kiln
kiln() { "$KILN" --root "$root" "$@"; }
made_ns=()
server_pid=

cleanup() {
    local status=$?
    set +e
    trap - INT TERM
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    if [[ -d $root ]]; then
        for file in "$work"/*/kiln.kdl; do
            [[ -f $file ]] && kiln down -f "$file" >/dev/null 2>&1
        done
    fi
    for ns in ${made_ns[@]+"${made_ns[@]}"}; do ip netns del "$ns" 2>/dev/null; done
    unmount_under "$work"
    local left=0
    machine_left "$work" "" || left=1
    remove_tree "$work"
    if ((left == 0)); then
        echo "cleanup: nothing left (namespaces, machine interfaces, mounts, processes)"
    else
        status=1
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
gbits() { python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9)'; }

print_machine
echo "kiln: $KILN; $(iperf3 --version | head -1)"

# --- kiln: two simulated hosts, a server on m2, a client on m1 ----------------------------
mkdir -p "$work/tcp"
cat >"$work/tcp/kiln.kdl" <<'KDL'
project "ovlbench"
image "iperf" {
    from "scratch"
    host-binary "/usr/bin/iperf3" "/bin/sleep"
    workdir "/tmp"      // iperf3 makes a temporary file for each stream in /tmp
}
host "m1" address="192.0.2.1"
host "m2" address="192.0.2.2"
network "mesh" subnet="10.77.0.0/16" driver="overlay"
container "server" image="iperf" host="m2" { network "mesh" ip="10.77.0.10"; cmd "iperf3" "-s"; }
container "client" image="iperf" host="m1" { network "mesh"; cmd "sleep" "infinity"; }
KDL
quiet kiln up -d -f "$work/tcp/kiln.kdl"

# --- the bare VXLAN tunnel between two namespaces -----------------------------------------
for ns in $NS_A $NS_B; do
    ip netns add "$ns"
    made_ns+=("$ns")
    ip -n "$ns" link set lo up
done
ip -n $NS_A link add ua type veth peer name ub netns $NS_B
ip -n $NS_A addr add 192.0.2.1/24 dev ua
ip -n $NS_B addr add 192.0.2.2/24 dev ub
ip -n $NS_A link set ua up
ip -n $NS_B link set ub up
ip -n $NS_A link add vx0 type vxlan id 42 local 192.0.2.1 remote 192.0.2.2 dstport 4789 dev ua
ip -n $NS_B link add vx0 type vxlan id 42 local 192.0.2.2 remote 192.0.2.1 dstport 4789 dev ub
ip -n $NS_A addr add 10.203.0.1/24 dev vx0
ip -n $NS_B addr add 10.203.0.2/24 dev vx0
ip -n $NS_A link set vx0 up
ip -n $NS_B link set vx0 up
ip netns exec $NS_B iperf3 -s >/dev/null 2>&1 &
server_pid=$!
sleep 0.5

vxlan=()
overlay=()
for ((round = 1; round <= RUNS; round++)); do
    v=$(ip netns exec $NS_A iperf3 -c 10.203.0.2 -t "$DURATION" -J | gbits)
    k=$(kiln exec client iperf3 -c 10.77.0.10 -t "$DURATION" -J | gbits)
    vxlan+=("$v")
    overlay+=("$k")
    printf 'round %d: vxlan %.2f Gbit/s, kiln overlay %.2f Gbit/s\n' "$round" "$v" "$k"
done
mv=$(median "${vxlan[@]}")
mk=$(median "${overlay[@]}")
python3 -c 'import sys; v,k=map(float,sys.argv[1:]); print(f"TCP medians: bare vxlan {v:.2f} Gbit/s, kiln overlay (2 simulated hosts) {k:.2f} Gbit/s, kiln/vxlan {k/v:.2f}x (goal >= 0.85)")' "$mv" "$mk"
quiet kiln down -f "$work/tcp/kiln.kdl"

# --- kiln up: 3 simulated hosts x 10 containers vs 30 on this machine ----------------------
mkdir -p "$work/hosts" "$work/one"
{
    echo 'project "ovlhosts"'
    echo 'image "iperf" { from "scratch"; host-binary "/usr/bin/iperf3" "/bin/sleep"; }'
    for h in 1 2 3; do echo "host \"m$h\" address=\"192.0.2.$h\""; done
    echo 'network "mesh" subnet="10.78.0.0/16" driver="overlay"'
    for i in $(seq 1 30); do
        echo "container \"c$i\" image=\"iperf\" host=\"m$(((i - 1) % 3 + 1))\" { network \"mesh\"; cmd \"sleep\" \"infinity\"; }"
    done
} >"$work/hosts/kiln.kdl"
{
    echo 'project "ovlone"'
    echo 'image "iperf" { from "scratch"; host-binary "/usr/bin/iperf3" "/bin/sleep"; }'
    echo 'network "flat" subnet="10.79.0.0/16"'
    for i in $(seq 1 30); do
        echo "container \"c$i\" image=\"iperf\" { network \"flat\"; cmd \"sleep\" \"infinity\"; }"
    done
} >"$work/one/kiln.kdl"
quiet kiln build -f "$work/hosts/kiln.kdl"
quiet kiln build -f "$work/one/kiln.kdl"
timed_up() { # FILE -> seconds
    local start end
    start=$(date +%s.%N)
    quiet kiln up -d -f "$1"
    end=$(date +%s.%N)
    quiet kiln down -f "$1"
    python3 -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$start" "$end"
}
hosts=()
one=()
for ((round = 1; round <= UP_RUNS; round++)); do
    h=$(timed_up "$work/hosts/kiln.kdl")
    o=$(timed_up "$work/one/kiln.kdl")
    hosts+=("$h")
    one+=("$o")
    printf 'round %d: up of 30 on 3 simulated hosts %.2f s, on one host %.2f s\n' "$round" "$h" "$o"
done
mh=$(median "${hosts[@]}")
mo=$(median "${one[@]}")
python3 -c 'import sys; h,o=map(float,sys.argv[1:]); print(f"kiln up medians: 3 hosts x 10 containers {h:.2f} s, 30 on one host {o:.2f} s, hosts/one {h/o:.2f}x (goal <= 2)")' "$mh" "$mo"
