# A fake herd node for tests of bad peers: answers NODE_INFO correctly (id, slots, the
# stories260K model) and every fragment badly. Usage: python3 fake_node.py MODE NODE_ID SLOTS;
# prints the port it listens on (127.0.0.1). MODE:
#   liar     every fragment answered with fragment_index + 1
#   garbage  in turn: malformed JSON, another fragment's id, a wrong job id
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE, NODE_ID, SLOTS = sys.argv[1], sys.argv[2], int(sys.argv[3])
lock = threading.Lock()
count = [0]


def bad_result(p):
    """The fragment result to send and whether to cut the JSON short."""
    r = {"job_id": p["job_id"], "fragment_id": p["fragment_id"],
         "fragment_index": p["fragment_index"], "output": "lies", "tokens_generated": 1,
         "processing_time_ms": 1.0, "node_id": NODE_ID}
    if MODE == "liar":
        r["fragment_index"] += 1
        return r, False
    with lock:
        k = count[0] % 3
        count[0] += 1
    if k == 1:  # another fragment's id
        i = (p["fragment_index"] + 1) % p["total_fragments"]
        r["fragment_index"] = i
        r["fragment_id"] = p["job_id"] + "-frag-" + str(i)
    elif k == 2:  # a wrong job id
        r["job_id"] = "job-0000000000000000"
    return r, k == 0


class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        p = req.get("params", {})
        ans = {"command": req["command"], "request_id": req["request_id"], "from": NODE_ID,
               "to": req.get("from", ""), "timestamp": 1, "params": {}, "status": "success"}
        cut = False
        if req["command"] == "NODE_INFO":
            ans["result"] = {"node_id": NODE_ID, "slots": SLOTS,
                             "models": [{"name": "stories260K"}]}
        elif req["command"] == "CANCEL_JOB":
            ans["result"] = {"job_id": p.get("job_id"), "cancelled": False}
        else:
            ans["result"], cut = bad_result(p)
        body = json.dumps(ans).encode()
        if cut:
            body = body[: len(body) // 2]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
