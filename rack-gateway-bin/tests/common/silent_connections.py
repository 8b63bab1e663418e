"""Opens TCP connections that never send a byte and times how long the server keeps each open.

    python3 silent_connections.py HOST PORT COUNT RATE GIVE_UP_SECONDS [silent|request]

With `request`, each connection sends one `GET /api/v1/health` first, reads the answer and then
goes silent, as a client holding a kept-alive connection does.

Connections are opened at RATE per second (so the server's accept queue does not overflow:
a connection dropped from a full queue looks established to the client but does not exist on
the server, and would never be closed). Each one is timed from the moment its handshake
completes until the server closes it (end of stream or reset). The script stops waiting
GIVE_UP_SECONDS after the last connection was opened and prints one JSON object on stdout.

It is a separate process so that the test's own file descriptor limit is not spent: the
integration test starts several of these side by side.
"""

import errno
import json
import resource
import selectors
import socket
import sys
import time


def main():
    host, port, count, rate, give_up = (
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        float(sys.argv[4]),
        float(sys.argv[5]),
    )
    mode = sys.argv[6] if len(sys.argv) > 6 else "silent"
    if mode not in ("silent", "request"):
        sys.exit(f"unknown mode {mode!r}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 64
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            sys.exit(f"need {wanted} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))

    selector = selectors.DefaultSelector()
    start = time.monotonic()
    connected_at = {}
    lifetimes = []
    connect_failures = []
    bytes_received = 0
    answered = set()
    opened = 0
    last_open = start
    last_close = None

    def open_one():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex((host, port))
        if code not in (0, errno.EINPROGRESS):
            connect_failures.append(errno.errorcode.get(code, str(code)))
            sock.close()
            return
        selector.register(sock, selectors.EVENT_WRITE, "connecting")

    answered_total = 0

    def finish(sock, now):
        nonlocal last_close, answered_total
        if sock.fileno() in answered:
            answered.discard(sock.fileno())
            answered_total += 1
        selector.unregister(sock)
        lifetimes.append(now - connected_at.pop(sock.fileno()))
        last_close = now
        sock.close()

    while True:
        now = time.monotonic()
        due = min(count, int((now - start) * rate) + 1)
        while opened < due:
            open_one()
            opened += 1
            last_open = time.monotonic()
        if opened == count and not selector.get_map():
            break
        if opened == count and now > last_open + give_up:
            break
        for key, _ in selector.select(timeout=0.01):
            sock = key.fileobj
            now = time.monotonic()
            if key.data == "connecting":
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code != 0:
                    connect_failures.append(errno.errorcode.get(code, str(code)))
                    selector.unregister(sock)
                    sock.close()
                    continue
                connected_at[sock.fileno()] = now
                if mode == "request":
                    # Small enough for the socket buffer: one non-blocking send does it.
                    sock.send(b"GET /api/v1/health HTTP/1.1\r\nHost: gateway\r\n\r\n")
                selector.modify(sock, selectors.EVENT_READ, "open")
                continue
            try:
                data = sock.recv(4096)
            except (ConnectionResetError, ConnectionAbortedError):
                finish(sock, now)
                continue
            if data:
                # In silent mode the server should just close; either way, read on to the end.
                bytes_received += len(data)
                answered.add(sock.fileno())
                continue
            finish(sock, now)

    still_open = len(connected_at)
    still_connecting = sum(1 for key in selector.get_map().values() if key.data == "connecting")
    lifetimes.sort()

    def quantile(q):
        if not lifetimes:
            return None
        return round(lifetimes[min(len(lifetimes) - 1, int(q * len(lifetimes)))], 3)

    print(
        json.dumps(
            {
                "opened": opened,
                "closed": len(lifetimes),
                "still_open": still_open,
                "still_connecting": still_connecting,
                "connect_failures": len(connect_failures),
                "connect_failure_kinds": sorted(set(connect_failures)),
                "bytes_received": bytes_received,
                "answered": answered_total + len(answered),
                "closed_within_5s": sum(1 for t in lifetimes if t < 5.0),
                "lifetime_p50": quantile(0.5),
                "lifetime_p99": quantile(0.99),
                "lifetime_max": round(lifetimes[-1], 3) if lifetimes else None,
                "last_open_after_start": round(last_open - start, 3),
                "last_close_after_start": None if last_close is None else round(last_close - start, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
