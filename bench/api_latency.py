# Latency of the JSON HTTP API over one kept-alive connection (docs/benchmarks.md,
# "HTTP API"). Run against a node on 127.0.0.1:9464, e.g. `build/troupe dev --demo 500`.
import http.client, time, statistics, sys
def run(path, n=200):
    c = http.client.HTTPConnection("127.0.0.1", 9464)
    lat = []
    for _ in range(n):
        t = time.perf_counter(); c.request("GET", path); r = c.getresponse(); body = r.read(); lat.append((time.perf_counter()-t)*1000)
        assert r.status == 200, (path, r.status, body[:200])
    lat.sort()
    print(f"{path:40s} n={n} p50={lat[n//2]:.2f} ms p99={lat[int(n*0.99)-1]:.2f} ms bytes={len(body)}")
for p in ["/api/v1/nodes", "/api/v1/stats", "/api/v1/tree?limit=50", "/api/v1/jobs?limit=50", "/api/v1/pipelines", "/api/v1/cluster/tree?limit=50"]:
    run(p)
