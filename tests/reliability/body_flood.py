#!/usr/bin/env python3
"""The clients of tests/reliability/body_flood.sh: many connections that
each POST a large body and stop short of its end.

  body_flood.py PORT PATH CONNECTIONS PER_ADDRESS LENGTH SENT GO_FILE

Opens CONNECTIONS connections to 127.0.0.1:PORT, PER_ADDRESS from each
source address in turn (127.0.0.2, 127.0.0.3, ...), each sending the
headers of POST PATH with Content-Length LENGTH and then SENT bytes of a
form body (SAMLResponse=AAAA...). Then one more connection from the first
address (which holds PER_ADDRESS): the bridge must close it. Prints
"held N CLOSED_EARLY EXTRA_REFUSED" once every connection has sent its part,
waits until GO_FILE exists, sends the rest of every body, reads each answer's
status and prints one JSON line: {"statuses": {...}, "errors": n, ...}.
"""
import asyncio
import json
import os
import sys
import time

CHUNK = 65536


def addr_of(i, per_address):
    return "127.0.0.%d" % (2 + i // per_address)


async def open_one(port, src, head, body, sent):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))
    writer.write(head)
    off = 0
    while off < sent:
        n = min(CHUNK, sent - off)
        writer.write(body[off:off + n])
        off += n
        await writer.drain()
    return reader, writer


async def finish(conn, body, sent, timeout):
    reader, writer = conn
    try:
        off = sent
        while off < len(body):
            n = min(CHUNK, len(body) - off)
            writer.write(body[off:off + n])
            off += n
            await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        parts = line.split()
        return parts[1].decode() if len(parts) >= 2 else "closed"
    except (ConnectionError, asyncio.TimeoutError, OSError) as e:
        return type(e).__name__
    finally:
        writer.close()


async def refused(port, src, head):
    """A connection past the per-address limit: closed by the bridge (EOF or reset)."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))
    except OSError:
        return True
    try:
        writer.write(head)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(1), 10)
        return data == b""
    except (ConnectionError, OSError):
        return True
    except asyncio.TimeoutError:
        return False  # still open after 10 s: not refused
    finally:
        writer.close()


async def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    total, per_address = int(sys.argv[3]), int(sys.argv[4])
    length, sent, go = int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
    prefix = b"SAMLResponse="
    body = memoryview(prefix + b"A" * (length - len(prefix)))
    head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "Content-Length: %d\r\n\r\n" % (path, port, length)).encode()
    t0 = time.monotonic()
    # Opened a batch at a time (the listen backlog), sending in parallel.
    conns = []
    for start in range(0, total, 128):
        batch = [open_one(port, addr_of(i, per_address), head, body, sent)
                 for i in range(start, min(total, start + 128))]
        conns += await asyncio.gather(*batch, return_exceptions=True)
    opened = [c for c in conns if not isinstance(c, BaseException)]
    errors = [type(c).__name__ for c in conns if isinstance(c, BaseException)]
    extra = await refused(port, addr_of(0, per_address), head)
    # A held connection the bridge has closed reads EOF at once.
    closed_early = sum(1 for r, _ in opened if r.at_eof())
    print("held %d %d %s %.2f" % (len(opened), closed_early, "yes" if extra else "no",
                                  time.monotonic() - t0), flush=True)
    while not os.path.exists(go):
        await asyncio.sleep(0.05)
    t1 = time.monotonic()
    statuses = await asyncio.gather(*[finish(c, body, sent, 60) for c in opened])
    counts = {}
    for s in statuses + errors:
        counts[s] = counts.get(s, 0) + 1
    print(json.dumps({"statuses": counts, "open_errors": len(errors),
                      "finish_seconds": round(time.monotonic() - t1, 2)}), flush=True)


asyncio.run(main())
