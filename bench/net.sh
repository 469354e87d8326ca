#!/usr/bin/env bash
# TCP throughput between two containers on one kiln network against the raw kernel, the cost
# of attaching a container to a network, and the accuracy and throughput of impaired links
# on each engine (the kernel's netem where it exists, kiln's own always).
#
#   sudo bench/net.sh            # KILN=/path/to/kiln to pick the binary
#   RUNS=1 ATTACH_N=5 sudo -E bench/net.sh      # a quick smoke run
#
# 1. Throughput: iperf3 (Debian's /usr/bin/iperf3, put in an image with `host-binary`), a
#    server and a client, `iperf3 -c ADDR -t $DURATION -J` (default 5 s); the figure is
#    end.sum_received.bits_per_second. Three set-ups, interleaved, $RUNS rounds (default 3),
#    medians:
#      veth    two bare network namespaces made here (kilnbench-a, kilnbench-b), joined by
#              one veth pair: the kernel's floor for two namespaces.
#      bridge  the same two namespaces, each with a second veth whose peer is in a third
#              namespace (kilnbench-br) holding a bridge: the topology kiln builds.
#      kiln    `kiln network create bench --subnet 10.201.0.0/24`, a server
#              `kiln run -d --network bench --ip 10.201.0.10 iperf iperf3 -s` and per round a
#              client `kiln run --rm --network bench iperf iperf3 -c 10.201.0.10 ...`.
#      bridge+rules  the bridge set-up with kiln's anti-spoofing rules on both
#              bridge ports: an nftables netdev ingress chain per port, the same six rules
#              kiln writes (source MAC, IPv4/ARP only, ARP header, ARP sender MAC and
#              address, IPv4 source), loaded with `nft` in kilnbench-br before each of its
#              runs and removed after (only when nft is installed).
#    Goal: kiln / veth >= 0.85 (with anti-spoofing on, as kiln always
#    has it). kiln / bridge and bridge+rules / bridge (what the rules cost) are printed too.
# 2. Attach cost: $ATTACH_N (30) interleaved pairs of `kiln run --rm --network bench iperf true`
#    and `kiln run --rm iperf true`; the difference of the medians is what attaching to a
#    network (interface, address, resolv.conf/hosts) costs. Goal: < 5 ms.
# 3. Impairments, on kiln's own engine and, where the kernel has netem (probed
#    with `tc qdisc add dev lo root netem` inside a scratch namespace made for it), on the
#    kernel's, side by side: two containers joined by five links — delay="30ms" (round
#    trip of 1-byte TCP ping-pongs, goal 60 ms ± 5 %), loss="10%" (5000 UDP datagrams one
#    way, goal 10 % ± 2 points), rate="10mbit" (iperf3 TCP goodput, goal 9–10 Mbit/s),
#    delay="30ms" jitter="10ms" (standard deviation of the round trips, goal 8.16 ms ± 20 %)
#    and an unimpaired link through the engine (iperf3, goal ≥ 2 Gbit/s, next to the veth
#    baseline).
#
# Safety: the machine's own network namespace is never touched. Every interface of the
# baselines is created inside a namespace made here (`ip -n NS link add ... peer ... netns
# OTHER`), kiln keeps its bridges in its own host namespace under its --root. The namespaces,
# kiln's containers and networks, the iperf3 servers and the temporary directory are removed
# by an EXIT trap (also on Ctrl-C / SIGTERM), which then checks and prints that the machine's
# interfaces and namespaces are as before and nothing is mounted under the directory.
# Exit status: 0 when every measurement ran (whether or not the goals are met), 1 otherwise.

set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_init net
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
ATTACH_N=${ATTACH_N:-30}

NS_A=kilnbench-a
NS_B=kilnbench-b
NS_BR=kilnbench-br
NS_PROBE=kilnbench-probe
KILN_SERVER=10.201.0.10

need_root "network namespaces, containers"
need_kiln
need_tools iperf3 python3 ip tc findmnt -- "apt-get install -y iperf3 iproute2 python3"
for ns in $NS_A $NS_B $NS_BR $NS_PROBE; do
    [[ ! -e /run/netns/$ns ]] || die "namespace $ns exists already (a previous run?): ip netns del $ns"
done

# What the machine has before: compared at exit.
machine_snapshot

work=$(bench_workdir net)
root=$work/kiln
kiln() { "$KILN" --root "$root" "$@"; }
cgroup_hash=
# kiln's cgroups for this --root live under /sys/fs/cgroup/*/kiln/HASH (HASH from the root's
# path); read it from a running container of ours, to check at exit that it is gone.
cgroup_hash_of() {
    local pid
    pid=$(kiln ps --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["pid"])')
    sed -n 's#^[0-9]*:[^:]*:.*/kiln/\([0-9a-f]*\)/.*#\1#p' "/proc/$pid/cgroup" | head -1
}
pids=() # processes started here: the baseline server, the python driver
made_ns=()

cleanup() {
    local status=$?
    set +e
    trap - INT TERM
    for pid in ${pids[@]+"${pids[@]}"}; do
        # The driver's children first (a kiln or iperf3 client in flight), then the process.
        for child in $(pgrep -P "$pid" 2>/dev/null); do kill "$child" 2>/dev/null; done
        kill "$pid" 2>/dev/null
    done
    for pid in ${pids[@]+"${pids[@]}"}; do wait "$pid" 2>/dev/null; done
    if [[ -d $root ]]; then
        [[ -f $work/link/kiln.kdl ]] && kiln down -f "$work/link/kiln.kdl" >/dev/null 2>&1
        local ids
        ids=$(kiln_ids "$root")
        # shellcheck disable=SC2086
        [[ -n $ids ]] && kiln rm -f $ids >/dev/null 2>&1
        kiln network rm bench >/dev/null 2>&1
    fi
    for ns in ${made_ns[@]+"${made_ns[@]}"}; do ip netns del "$ns" 2>/dev/null; done
    unmount_under "$work"
    # Check: nothing of ours is left, the machine's namespace is as it was.
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
echo "kiln: $KILN; $(iperf3 --version | head -1)"

# --- kiln: image, network, server ---------------------------------------------------------
mkdir -p "$work/image"
cat >"$work/image/kiln.kdl" <<'KDL'
image "iperf" {
    from "scratch"
    host-binary "/usr/bin/iperf3" "/bin/true"
    workdir "/tmp"      // iperf3 makes a temporary file for each stream in /tmp
}
KDL
quiet kiln build -f "$work/image/kiln.kdl"
quiet kiln network create bench --subnet 10.201.0.0/24
quiet kiln run -d --name iperf-server --network bench --ip $KILN_SERVER iperf iperf3 -s
cgroup_hash=$(cgroup_hash_of)
member=$(kiln network inspect bench --format json |
    python3 -c 'import json,sys; print(*[m["address"] for m in json.load(sys.stdin)["members"]])')
[[ $member == "$KILN_SERVER"* ]] || die "the server is not on bench at $KILN_SERVER: $member"

# --- baselines: three namespaces, all interfaces made inside them -------------------------
for ns in $NS_A $NS_B $NS_BR; do
    ip netns add "$ns"
    made_ns+=("$ns")
    ip -n "$ns" link set lo up
done
# veth: a <-> b directly.
ip -n $NS_A link add va0 type veth peer name vb0 netns $NS_B
ip -n $NS_A addr add 10.202.0.1/24 dev va0
ip -n $NS_B addr add 10.202.0.2/24 dev vb0
ip -n $NS_A link set va0 up
ip -n $NS_B link set vb0 up
# bridge: a <-> br0 <-> b, the bridge alone in its namespace (as in kiln's host namespace).
ip -n $NS_BR link add br0 type bridge
ip -n $NS_BR link set br0 up
ip -n $NS_A link add va1 type veth peer name pa netns $NS_BR
ip -n $NS_B link add vb1 type veth peer name pb netns $NS_BR
ip -n $NS_BR link set pa master br0 up
ip -n $NS_BR link set pb master br0 up
ip -n $NS_A addr add 10.202.1.1/24 dev va1
ip -n $NS_B addr add 10.202.1.2/24 dev vb1
ip -n $NS_A link set va1 up
ip -n $NS_B link set vb1 up
# kiln's anti-spoofing rules for the two bridge ports, as kiln writes them (src/net/antispoof.rs).
rules=
if command -v nft >/dev/null; then
    rules=$work/rules.nft
    port_rules() { # PORT MAC IPV4
        local mac=0x${2//:/} ip
        ip=0x$(printf '%02x' ${3//./ })
        cat <<NFT
    chain $1 {
        type filter hook ingress device "$1" priority -500; policy accept;
        @ll,48,48 != $mac counter drop comment "kiln: source MAC"
        @ll,96,16 != 0x800 @ll,96,16 != 0x806 counter drop comment "kiln: not IPv4 or ARP"
        @ll,96,16 0x806 @nh,0,48 != 0x108000604 counter drop comment "kiln: ARP not Ethernet/IPv4"
        @ll,96,16 0x806 @nh,64,48 != $mac counter drop comment "kiln: ARP sender MAC"
        @ll,96,16 0x806 @nh,112,32 != $ip counter drop comment "kiln: ARP sender address"
        @ll,96,16 0x800 @nh,96,32 != $ip counter drop comment "kiln: IPv4 source"
    }
NFT
    }
    {
        echo "table netdev kilnbench {"
        port_rules pa "$(ip -n $NS_A -br link show va1 | awk '{print $3}')" 10.202.1.1
        port_rules pb "$(ip -n $NS_B -br link show vb1 | awk '{print $3}')" 10.202.1.2
        echo "}"
    } >"$rules"
fi
# One server in b answers both baselines (iperf3 runs one test at a time; runs are sequential).
ip netns exec $NS_B iperf3 -s >"$work/base-server.log" 2>&1 &
base_server=$!
pids+=("$base_server")

# --- 1 and 2: the driver ------------------------------------------------------------------
status=0
python3 - "$KILN" "$root" "$RUNS" "$DURATION" "$ATTACH_N" "$KILN_SERVER" "$NS_A" "$rules" "$NS_BR" <<'PY' &
import json, statistics, subprocess, sys, time

kiln, root, runs, duration, attach_n, server, ns_a, rules, ns_br = sys.argv[1:10]
runs, attach_n = int(runs), int(attach_n)
K = [kiln, "--root", root]
clients = {
    "veth": ["ip", "netns", "exec", ns_a, "iperf3", "-c", "10.202.0.2"],
    "bridge": ["ip", "netns", "exec", ns_a, "iperf3", "-c", "10.202.1.2"],
    "kiln": [*K, "run", "--rm", "--network", "bench", "iperf", "iperf3", "-c", server],
}
if rules:
    clients["bridge+rules"] = clients["bridge"]
failures = []


def load():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def rules_on(on):
    """Loads (or removes) kiln's rules on the bench bridge's ports, in its own namespace."""
    if on:
        subprocess.run(["ip", "netns", "exec", ns_br, "nft", "-f", rules], check=True)
    else:
        subprocess.run(["ip", "netns", "exec", ns_br, "nft", "delete", "table", "netdev",
                        "kilnbench"], check=True)


def iperf(name, seconds=duration, tries=1):
    """One client run of set-up `name`: received bits per second, or None."""
    if name == "bridge+rules":
        rules_on(True)
        try:
            return iperf("bridge", seconds, tries)
        finally:
            rules_on(False)
    argv = clients[name] + ["-t", seconds, "-J"]
    for attempt in range(tries):
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        try:
            report = json.loads(done.stdout)
            bps = report["end"]["sum_received"]["bits_per_second"]
            if bps > 0:
                return bps
            error = report.get("error", "nothing received")
        except (ValueError, KeyError):
            error = (done.stderr.strip() or done.stdout.strip())[-300:]
        if attempt + 1 < tries:
            time.sleep(0.3)  # the server may still be starting
    failures.append(f"{name}: exit {done.returncode}: {error}")
    return None


# Warm-up (the servers come up, page cache): one short run each, retried; not counted.
for name in clients:
    iperf(name, seconds="1", tries=20)
if failures:
    print("warm-up failed:", *failures, sep="\n  ")
    sys.exit(1)

print(f"\n1. TCP throughput, iperf3 -t {duration}: {runs} rounds, the {len(clients)} set-ups once each"
      " per round (order rotates)")
print(f"   load average before: {load()}")
names = list(clients)
gbps = {n: [] for n in names}
for r in range(runs):
    order = names[r % len(names):] + names[:r % len(names)]
    for name in order:
        bps = iperf(name)
        if bps is not None:
            gbps[name].append(bps / 1e9)
print(f"   load average after:  {load()}")
for name in names:
    print(f"   {name:7} " + " ".join(f"{g:.2f}" for g in gbps[name]) + " Gbit/s")
if any(not gbps[n] for n in names):
    print("   a set-up has no successful run:", *failures, sep="\n  ")
    sys.exit(1)
med = {n: statistics.median(gbps[n]) for n in names}
print()
print(f"   {'set-up':8} {'median Gbit/s':>14} {'best':>6}")
for name in names:
    print(f"   {name:8} {med[name]:14.2f} {max(gbps[name]):6.2f}")
ratio_veth = med["kiln"] / med["veth"]
ratio_bridge = med["kiln"] / med["bridge"]
print(f"   kiln / veth   {ratio_veth:.2f}   goal ≥ 0.85   {'PASS' if ratio_veth >= 0.85 else 'FAIL'}")
print(f"   kiln / bridge {ratio_bridge:.2f}   (bridge / veth {med['bridge'] / med['veth']:.2f})")
if "bridge+rules" in med:
    print(f"   bridge+rules / bridge {med['bridge+rules'] / med['bridge']:.2f}   (what the anti-spoofing rules cost)")

print(f"\n2. attach cost: {attach_n} interleaved pairs of `kiln run --rm [--network bench] iperf true`")
print(f"   load average before: {load()}")
attach = {"network": [*K, "run", "--rm", "--network", "bench", "iperf", "true"],
          "none": [*K, "run", "--rm", "iperf", "true"]}
ms = {n: [] for n in attach}


def timed(name):
    start = time.perf_counter()
    done = subprocess.run(attach[name], stdin=subprocess.DEVNULL, capture_output=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        failures.append(f"attach {name}: exit {done.returncode}: {done.stderr.decode(errors='replace').strip()}")
    return elapsed * 1000


timed("network"), timed("none")  # warm-up
for i in range(attach_n):
    order = ["network", "none"] if i % 2 == 0 else ["none", "network"]
    for name in order:
        ms[name].append(timed(name))
print(f"   load average after:  {load()}")
for name in attach:
    print(f"   {name:8} " + " ".join(f"{t:.0f}" for t in ms[name]) + " ms")
m = {n: statistics.median(ms[n]) for n in attach}
diff = m["network"] - m["none"]
print(f"   median with --network {m['network']:.1f} ms, without {m['none']:.1f} ms,"
      f" best {min(ms['network']):.1f} / {min(ms['none']):.1f} ms")
print(f"   attach cost (difference of medians) {diff:.1f} ms   goal < 5 ms   "
      f"{'PASS' if diff < 5 else 'FAIL'}")
if failures:
    print(f"\n{len(failures)} run(s) failed:", *failures[:10], sep="\n  ")
    sys.exit(1)
PY
driver=$!
pids+=("$driver")
wait "$driver" || status=$?
pids=("$base_server") # the driver has finished: not to be killed at exit

rx=$(kiln network inspect bench --format json |
    python3 -c 'import json,sys; m=json.load(sys.stdin)["members"][0]; print(m["rx_bytes"], m["tx_bytes"])')
echo "   (kiln network inspect bench: the server's host-side interface counted rx/tx bytes $rx)"

# --- 3: impairments, on each engine this kernel has ------------------------------------------
echo
ip netns add $NS_PROBE
made_ns+=($NS_PROBE)
netem=0
ip netns exec $NS_PROBE tc qdisc add dev lo root netem delay 1ms 2>/dev/null && netem=1
ip netns del $NS_PROBE
engines=(userspace)
((netem)) && engines+=(kernel)
echo "3. impairments, engines: ${engines[*]}$( ((netem)) || echo " (this kernel has no netem)")"
mkdir -p "$work/link"
cat >"$work/link/echo.py" <<'PY'
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7000))
s.listen()
while True:
    c, _ = s.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while (b := c.recv(1)):
        c.sendall(b)
    c.close()
PY
cat >"$work/link/rtt.py" <<'PY'
import socket, statistics, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for attempt in range(100):  # the server may still be starting
    try:
        s = socket.create_connection((host, port), timeout=2)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("no echo server at %s:%d" % (host, port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
rtts = []
for _ in range(count + 2):
    start = time.perf_counter()
    s.sendall(b"x")
    s.recv(1)
    rtts.append((time.perf_counter() - start) * 1000)
    time.sleep(0.005)
rtts = rtts[2:]  # the first exchanges settle the connection
print("%.2f %.2f %.2f %.2f" % (statistics.median(rtts), statistics.pstdev(rtts), min(rtts), max(rtts)))
PY
cat >"$work/link/udp.py" <<'PY'
# udp.py sink HOST PORT: counts distinct datagrams until 2 s of silence, prints the count.
# udp.py send HOST PORT N: sends N numbered datagrams 200 µs apart.
import socket, sys, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if mode == "sink":
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((host, port))
    s.settimeout(10)
    seen = set()
    try:
        while True:
            seen.add(s.recv(64)[:4])
            s.settimeout(2)
    except socket.timeout:
        pass
    print(len(seen))
else:
    n, start = int(sys.argv[4]), time.perf_counter()
    for i in range(n):
        s.sendto(i.to_bytes(4, "big") + bytes(60), (host, port))
        delay = start + (i + 1) * 0.0002 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
PY
link_project() { # ENGINE
    cat <<KDL
project "kilnbench"

image "tools" {
    from "scratch"
    host-binary "/bin/sh" "/bin/sleep" "/usr/bin/iperf3" "/usr/bin/python3"
    host-path "/usr/lib/python3.11"
    copy "echo.py" "/echo.py"
    copy "rtt.py" "/rtt.py"
    copy "udp.py" "/udp.py"
    workdir "/tmp"
}

container "a" image="tools" {
    cmd "sleep" "infinity"
}

container "b" image="tools" {
    cmd "sh" "-c" "iperf3 -s -D && exec python3 /echo.py"
}

link "a:eth1" "b:eth1" subnet="10.201.1.0/30" { impair delay="30ms" engine="$1"; }
link "a:eth2" "b:eth2" subnet="10.201.2.0/30" { impair loss="10%" engine="$1"; }
link "a:eth3" "b:eth3" subnet="10.201.3.0/30" { impair rate="10mbit" engine="$1"; }
link "a:eth4" "b:eth4" subnet="10.201.4.0/30" { impair delay="30ms" jitter="10ms" engine="$1"; }
link "a:eth5" "b:eth5" subnet="10.201.5.0/30" { impair engine="$1"; }
KDL
}
iperf_mbits() { # ARGV...: an iperf3 -J client; prints the received Mbit/s or "-"
    "$@" -J 2>/dev/null | python3 -c '
import json, sys
try: print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))
except Exception: print("-")'
}
declare -A fig
for engine in "${engines[@]}"; do
    link_project "$engine" >"$work/link/kiln.kdl"
    quiet kiln build -f "$work/link/kiln.kdl"
    kiln up -d -f "$work/link/kiln.kdl" >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; die "kiln up failed"; }
    grep -c "impaired by the $engine engine" "$work/up.log" | grep -qx 5 ||
        { cat "$work/up.log" >&2; die "the links are not all carried by the $engine engine"; }
    read -r rtt _ _ _ <<<"$(kiln exec a python3 /rtt.py 10.201.1.2 7000 100)"
    read -r jmean jsd jmin jmax <<<"$(kiln exec a python3 /rtt.py 10.201.4.2 7000 200)"
    kiln exec b python3 /udp.py sink 10.201.2.2 7001 >"$work/sink.out" 2>&1 &
    sink=$!
    pids+=("$sink")
    sleep 0.5
    kiln exec a python3 /udp.py send 10.201.2.2 7001 5000
    wait "$sink"
    received=$(cat "$work/sink.out")
    fig[$engine.rtt]=$rtt
    fig[$engine.jsd]=$jsd
    fig[$engine.jrange]="$jmin–$jmax"
    fig[$engine.loss]=$(python3 -c "print('%.2f' % (100 - int('$received') / 50))" 2>/dev/null || echo -)
    fig[$engine.rate]=$(iperf_mbits kiln exec a iperf3 -c 10.201.3.2 -t 5)
    fig[$engine.tput]=$(iperf_mbits kiln exec a iperf3 -c 10.201.5.2 -t "$DURATION")
    quiet kiln down -f "$work/link/kiln.kdl"
done
veth=$(iperf_mbits ip netns exec $NS_A iperf3 -c 10.202.0.2 -t "$DURATION")
row() { # LABEL GOAL KEY CHECK
    local line
    line=$(printf "   %-26s %-22s" "$1" "$2")
    for engine in "${engines[@]}"; do
        local v=${fig[$engine.$3]:--}
        local verdict
        verdict=$(python3 -c "v='$v'
try: x=float(v.split('–')[0]); print('PASS' if ($4) else 'FAIL')
except ValueError: print('')" 2>/dev/null)
        line+=$(printf " %-10s %-5s" "$v" "$verdict")
    done
    echo "$line"
}
printf "   %-26s %-22s" "impairment" "goal"
for engine in "${engines[@]}"; do printf " %-16s" "$engine"; done
echo
row 'delay="30ms": ping rtt' "60 ms ± 5 %" rtt 'abs(x - 60) <= 3'
row 'loss="10%": of 5000 lost' "10 % ± 2 points" loss 'abs(x - 10) <= 2'
row 'rate="10mbit": TCP' "9–10 Mbit/s" rate '9 <= x <= 10'
row 'jitter="10ms": rtt sd' "8.16 ms ± 20 %" jsd 'abs(x - 8.16) <= 1.63'
row 'jitter="10ms": rtt range' "40–80 ms" jrange 'x >= 39'
row 'unimpaired: TCP Mbit/s' "≥ 2000 (userspace)" tput 'x >= 2000'
echo "   veth baseline (two namespaces, one veth pair): $veth Mbit/s;" \
    "userspace / veth $(python3 -c "print('%.2f' % (float('${fig[userspace.tput]}') / float('$veth')))" 2>/dev/null || echo -)"
exit $status
