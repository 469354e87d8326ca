"""Asks the api every 100 ms for SECONDS seconds: api-1 first, and api-2 when api-1 gives
no answer within 300 ms (its name does not resolve, its link is down, it hangs, it is
slow). Prints who answered; exits 0 when every request was answered — and, with
--expect-failover, only if api-2 answered some (the fault was noticed and ridden out).
"""
import sys
import time
import urllib.request

seconds = float(sys.argv[1])
expect_failover = "--expect-failover" in sys.argv
replicas = ["api-1", "api-2"]
served = {name: 0 for name in replicas}
asked = unanswered = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    asked += 1
    for name in replicas:
        try:
            with urllib.request.urlopen(f"http://{name}:8080/", timeout=0.3) as reply:
                served[reply.read().decode()] += 1
            break
        except Exception:
            continue
    else:
        unanswered += 1
    time.sleep(0.1)
print(f"{asked - unanswered} of {asked} answered: " + ", ".join(f"{k} {v}" for k, v in served.items()))
ok = asked > 0 and unanswered == 0 and (served["api-2"] > 0 or not expect_failover)
sys.exit(0 if ok else 1)
