"""Sends COUNT numbered requests to the echo server at HOST PORT and waits for each answer.

A request without an answer within 150 ms (or that cannot be sent: the line is down) is
sent again (up to 40 tries: 6 s, so an outage and the lossy line after it are ridden out),
unless --no-retry. Prints what happened; exits 0 when every request was answered and at least
one needed another try (the line is lossy and the retries saved the day), 1 otherwise.
"""
import socket
import sys
import time

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tries_allowed = 1 if "--no-retry" in sys.argv else 40
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client.settimeout(0.15)
answered = retries = 0
fastest = None
for n in range(count):
    request = f"request {n}".encode()
    for attempt in range(tries_allowed):
        if attempt:
            retries += 1
        sent = time.monotonic()
        try:
            client.sendto(request, (host, port))
            while True:
                data, _ = client.recvfrom(2048)
                if data == request:
                    break
        except socket.timeout:
            continue
        except OSError:
            # Nothing could be sent (the line is down): wait as for an answer, try again.
            time.sleep(0.15)
            continue
        rtt = (time.monotonic() - sent) * 1000
        fastest = rtt if fastest is None else min(fastest, rtt)
        answered += 1
        break
shown = "-" if fastest is None else f"{fastest:.1f} ms"
print(f"{answered} of {count} answered, {retries} retries, fastest {shown}")
sys.exit(0 if answered == count and retries > 0 else 1)
