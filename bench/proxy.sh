#!/usr/bin/env bash
# The published-port proxy against a direct connection: connections per second,
# TCP throughput, and what idle connections cost the proxy's process.
#
#   sudo bench/proxy.sh                  # KILN=/path/to/kiln to pick the binary
#   RUNS=1 DURATION=2 CONNS=2000 IDLE=200 sudo -E bench/proxy.sh   # a quick smoke run
#
# Set-up: `kiln network create bench-proxy --subnet 10.203.0.0/24` and one container at
# 10.203.0.10 with three servers, published with `-p`: iperf3 -s (5201), a Python server
# (7000) that answers each connection with one line and closes it, and one (7001) that holds
# each connection until the client closes it. Two ways to reach them:
#   proxy   from the machine, 127.0.0.1:HOST_PORT: through kiln's proxy (the machine's
#           loopback, then a socket in kiln's namespace to the container);
#   direct  from inside kiln's network namespace (nsenter --net=ROOT/net/host.netns) to
#           10.203.0.10: the bridge alone, no proxy.
# 1. Connections per second: a Python client, $WORKERS (4) threads, $CONNS (5000)
#    connect + read one line + close in all; $RUNS (3) rounds, interleaved, medians.
# 2. Throughput: `iperf3 -c … -t $DURATION -J` (default 5 s), received bits per second;
#    $RUNS rounds, interleaved, medians.
# 3. Idle connections: $IDLE (1000) clients connected through the proxy and left idle;
#    descriptors, threads and resident memory of the proxy's process (the container's
#    supervisor) before, with them, and after they close.
# Ratios proxy / direct are printed; the goal for the proxy is to cost little per
# connection and to hold idle clients with two descriptors each and no thread.
#
# Safety: the machine's own network namespace is never changed (kiln keeps its bridge in its
# own namespace under the temporary --root; the proxy listens on 127.0.0.1 only, on a port
# the kernel picks). The container, the network and the temporary directory are removed by
# an EXIT trap, which then checks that nothing of the run is left. Exit status: 0 when every
# measurement ran, 1 otherwise.

set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_init proxy
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-5000}
WORKERS=${WORKERS:-4}
IDLE=${IDLE:-1000}
SERVER=10.203.0.10

need_root "network namespaces, containers"
need_kiln
need_tools iperf3 python3 nsenter -- "apt-get install -y iperf3 python3 util-linux"

work=$(bench_workdir proxy)
root=$work/kiln
kiln() { "$KILN" --root "$root" "$@"; }

cleanup() {
    local status=$?
    set +e
    trap - INT TERM
    if [[ -d $root ]]; then
        kiln rm -f bench-proxy-server >/dev/null 2>&1
        kiln network rm bench-proxy >/dev/null 2>&1
    fi
    local left=0
    local procs
    procs=$(pgrep -af -- "$work" || true)
    [[ -z $procs ]] || { echo "LEFT: processes: $procs"; left=1; }
    if grep -F "$work" /proc/self/mountinfo >/dev/null; then
        echo "LEFT: mounts under $work"; left=1
    fi
    rm -rf "$work"
    if ((left == 0)); then
        echo "cleanup: nothing left (processes, mounts)"
    else
        status=1
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kiln: $KILN; $(iperf3 --version | head -1)"

mkdir -p "$work/image"
cat >"$work/image/server.py" <<'PY'
import asyncio
async def answer(reader, writer):
    writer.write(b"ok\n")
    await writer.drain()
    writer.close()
async def hold(reader, writer):
    await reader.read()  # until the client closes
    writer.close()
async def main():
    server = await asyncio.start_server(answer, "0.0.0.0", 7000, backlog=1024)
    held = await asyncio.start_server(hold, "0.0.0.0", 7001, backlog=1024)
    async with server, held:
        await asyncio.gather(server.serve_forever(), held.serve_forever())
asyncio.run(main())
PY
cat >"$work/image/start.sh" <<'SH'
iperf3 -s -D
exec python3 /server.py
SH
cat >"$work/image/kiln.kdl" <<'KDL'
image "proxybench" {
    from "scratch"
    host-binary "/bin/sh" "/usr/bin/iperf3" "/usr/bin/python3"
    host-path "/usr/lib/python3.11"
    copy "server.py" "/server.py"
    copy "start.sh" "/start.sh"
    workdir "/tmp"
}
KDL
quiet kiln build -f "$work/image/kiln.kdl"
quiet kiln network create bench-proxy --subnet 10.203.0.0/24
iperf_port=$(free_port)
line_port=$(free_port)
hold_port=$(free_port)
quiet kiln run -d --name bench-proxy-server --network bench-proxy --ip $SERVER \
    -p "$iperf_port:5201" -p "$line_port:7000" -p "$hold_port:7001" proxybench sh /start.sh
supervisor=$(python3 -c 'import json,sys,glob; print(json.load(open(glob.glob(sys.argv[1] + "/containers/*/state.json")[0]))["state"]["supervisor_pid"])' "$root")
netns=$root/net/host.netns

python3 - "$RUNS" "$DURATION" "$CONNS" "$WORKERS" "$IDLE" "$iperf_port" "$line_port" "$SERVER" "$netns" "$supervisor" "$hold_port" <<'PY'
import json, os, resource, socket, statistics, subprocess, sys, threading, time

runs, duration, conns, workers, idle = (int(v) for v in sys.argv[1:6])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, idle + 256)), hard))
iperf_port, line_port, server, netns, supervisor, hold_port = sys.argv[6:12]
in_kiln = ["nsenter", f"--net={netns}"]
CLIENT = r'''
import socket, sys, threading, time
host, port, conns, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
errors = []
def work(n):
    for _ in range(n):
        try:
            s = socket.create_connection((host, port), timeout=5)
            if s.makefile("rb").readline() != b"ok\n": errors.append("bad answer")
            s.close()
        except OSError as e:
            errors.append(str(e))
start = time.perf_counter()
threads = [threading.Thread(target=work, args=(conns // workers,)) for _ in range(workers)]
for t in threads: t.start()
for t in threads: t.join()
elapsed = time.perf_counter() - start
print(conns // workers * workers / elapsed, len(errors))
'''
ways = {
    "direct": (in_kiln, server, "7000", "5201"),
    "proxy": ([], "127.0.0.1", line_port, iperf_port),
}
failures = []

def conns_per_second(way, n=conns):
    prefix, host, port, _ = ways[way]
    done = subprocess.run(prefix + ["python3", "-c", CLIENT, host, port, str(n), str(workers)],
                          capture_output=True, text=True)
    try:
        rate, errors = done.stdout.split()
        if int(errors):
            failures.append(f"{way}: {errors} connections failed")
        return float(rate)
    except ValueError:
        failures.append(f"{way}: {done.stderr.strip()[-300:]}")
        return None

def throughput(way, seconds=duration):
    prefix, host, _, port = ways[way]
    for attempt in range(20):
        done = subprocess.run(prefix + ["iperf3", "-c", host, "-p", port, "-t", str(seconds), "-J"],
                              capture_output=True, text=True)
        try:
            return json.loads(done.stdout)["end"]["sum_received"]["bits_per_second"]
        except (ValueError, KeyError):
            time.sleep(0.3)  # the server may still be starting
    failures.append(f"{way} iperf3: {(done.stderr or done.stdout).strip()[-300:]}")
    return None

# Warm-up: the servers are up, both paths work.
for way in ways:
    conns_per_second(way, n=workers * 10)
    throughput(way, seconds=1)
if failures:
    print("warm-up failed:", *failures, sep="\n  ")
    sys.exit(1)

def table(title, unit, fmt, measure):
    print(f"\n{title}: {runs} rounds, interleaved")
    values = {w: [] for w in ways}
    for r in range(runs):
        order = list(ways) if r % 2 == 0 else list(reversed(ways))
        for way in order:
            v = measure(way)
            if v is not None:
                values[way].append(v)
    for way in ways:
        print(f"   {way:7} " + " ".join(fmt(v) for v in values[way]) + f" {unit}")
    if any(not values[w] for w in ways):
        return None
    med = {w: statistics.median(values[w]) for w in ways}
    print(f"   median: direct {fmt(med['direct'])}, proxy {fmt(med['proxy'])} {unit};"
          f" proxy / direct {med['proxy'] / med['direct']:.2f}")
    return med

print(f"load average before: {' '.join(open('/proc/loadavg').read().split()[:3])}")
table(f"1. connections per second ({conns} connect + one line + close, {workers} threads)",
      "conn/s", lambda v: f"{v:.0f}", conns_per_second)
table(f"2. TCP throughput (iperf3 -t {duration})", "Gbit/s", lambda v: f"{v / 1e9:.2f}", throughput)
print(f"load average after: {' '.join(open('/proc/loadavg').read().split()[:3])}")

def usage(pid):
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = len(os.listdir(f"/proc/{pid}/task"))
    rss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
    return fds, threads, rss

print(f"\n3. {idle} idle clients through the proxy (the proxy's process: pid {supervisor})")
time.sleep(0.5)
before = usage(supervisor)
clients = []
for _ in range(idle):
    s = socket.create_connection(("127.0.0.1", int(hold_port)), timeout=5)
    clients.append(s)
time.sleep(1.0)
loaded = usage(supervisor)
for s in clients:
    s.close()
deadline = time.monotonic() + 30
while time.monotonic() < deadline and usage(supervisor)[0] > before[0]:
    time.sleep(0.1)
time.sleep(0.5)
after = usage(supervisor)
print(f"   {'':22} {'fds':>6} {'threads':>8} {'RSS KiB':>9}")
for name, (fds, threads, rss) in [("before", before), (f"with {idle} idle", loaded), ("after they closed", after)]:
    print(f"   {name:22} {fds:6} {threads:8} {rss:9}")
print(f"   per idle client: {(loaded[0] - before[0]) / idle:.2f} fds, "
      f"{(loaded[1] - before[1]) / idle:.2f} threads, {(loaded[2] - before[2]) / idle:.1f} KiB")
if failures:
    print(f"\n{len(failures)} measurement(s) failed:", *failures[:10], sep="\n  ")
    sys.exit(1)
PY
