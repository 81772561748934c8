"""xfer.py — a timed one-way TCP transfer between two emulated hosts (tests/system).

    xfer.py serve PORT BYTES TIMEOUT    accept one connection, read BYTES, answer one byte
    xfer.py send HOST PORT BYTES        connect (retrying up to 10 s), send BYTES zeros,
                                        wait for the answer; print the seconds from the
                                        first byte sent to the answer received
The receiver answers only after it has every byte, so the time covers the whole transfer.
"""
import socket
import sys
import time


def serve(port, nbytes, timeout):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(1)
    srv.settimeout(timeout)
    conn, _ = srv.accept()
    conn.settimeout(timeout)
    got = 0
    while got < nbytes:
        chunk = conn.recv(1 << 20)
        if not chunk:
            sys.exit("xfer serve: connection closed after %d of %d bytes" % (got, nbytes))
        got += len(chunk)
    conn.sendall(b"k")
    conn.close()


def send(host, port, nbytes):
    deadline = time.monotonic() + 10
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=10)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    sock.settimeout(60)
    payload = bytes(1 << 16)
    t0 = time.monotonic()
    left = nbytes
    while left > 0:
        n = sock.send(payload[: min(left, len(payload))])
        left -= n
    if sock.recv(1) != b"k":
        sys.exit("xfer send: no answer")
    print("%.6f" % (time.monotonic() - t0))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    elif len(sys.argv) == 5 and sys.argv[1] == "send":
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(__doc__)
