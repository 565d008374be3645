"""A StatsD/DogStatsD UDP relay: receive datagrams where user code sends them, pass them on to a gateway.

Two uses of one program:
  * the Kubernetes pod's metrics sidecar (manifests/kubernetes/pod.yaml): listens on localhost:8125 inside
    the pod and prints every datagram (``--echo``), forwarding it when ``--forward`` names a gateway;
  * on SageMaker, where no sidecar exists, bootstrap.py binds the addresses user code was given on
    Kubernetes and hands the sockets over (``--listen-fd``), so the datagrams reach the metrics gateway while
    STATSD_HOST/DD_AGENT_HOST keep their Kubernetes values.

    python3 statsd_relay.py (--listen HOST:PORT | --listen-fd FD)... [--forward HOST:PORT] [--echo]
                            [--ready-fd FD]

Standard library only. A datagram that cannot be forwarded is counted and reported on stderr, never fatal:
metrics are best-effort, as they are over UDP anyway.
"""

from __future__ import annotations

import argparse
import errno
import os
import selectors
import socket
import sys

MAX_DATAGRAM = 65535
# Resolving "localhost" may yield ::1 where the container has no IPv6 loopback; such an address is skipped.
UNAVAILABLE_ADDRESS = (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)


def split_address(text: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def resolve_udp(host: str, port: int) -> list[tuple[int, tuple]]:
    """Every (family, sockaddr) a UDP client could pick for host:port, without duplicates."""
    found: list[tuple[int, tuple]] = []
    for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM):
        entry = (family, sockaddr[:2])
        if entry not in found:
            found.append(entry)
    return found


def bind_udp(host: str, port: int, skip: set[tuple] = frozenset()) -> list[socket.socket]:
    """Bound UDP sockets on every address host:port resolves to, except those in `skip` (sockaddr[:2]).

    Raises OSError when an address that exists here cannot be bound (for example it is already in use).
    """
    sockets = []
    for family, sockaddr in resolve_udp(host, port):
        if sockaddr in skip:
            continue
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind(sockaddr)
        except OSError as exc:
            sock.close()
            if exc.errno in UNAVAILABLE_ADDRESS:
                continue
            for bound in sockets:
                bound.close()
            raise OSError(
                exc.errno, f"cannot listen on {host}:{port} ({sockaddr[0]}): {exc.strerror}"
            ) from None
        sockets.append(sock)
    return sockets


def relay(
    listeners: list[socket.socket], forward: tuple[int, tuple] | None, echo: bool, ready_fd: int | None = None
) -> None:
    """Serve until killed: every datagram is echoed to stdout and/or sent on to `forward` (family, sockaddr).

    The gateway is resolved once, at start-up, like the StatsD clients themselves do. `ready_fd` gets one
    byte and is closed once datagrams are being served.
    """
    selector = selectors.DefaultSelector()
    for sock in listeners:
        selector.register(sock, selectors.EVENT_READ)
    outbound = socket.socket(forward[0], socket.SOCK_DGRAM) if forward else None
    if ready_fd is not None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)
    failures = 0
    while True:
        for key, _ in selector.select():
            payload, sender = key.fileobj.recvfrom(MAX_DATAGRAM)
            if echo:
                print(f"statsd-relay: {sender[0]} {payload.decode('utf-8', 'replace')}", flush=True)
            if outbound is None:
                continue
            try:
                outbound.sendto(payload, forward[1])
            except OSError as exc:
                failures += 1
                print(
                    f"statsd-relay: cannot forward to {forward[1][0]}:{forward[1][1]} ({exc.strerror}); "
                    f"{failures} datagram(s) lost so far",
                    file=sys.stderr,
                    flush=True,
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--listen",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="bind every address HOST resolves to (repeatable)",
    )
    parser.add_argument(
        "--listen-fd",
        action="append",
        default=[],
        type=int,
        metavar="FD",
        help="an inherited, already bound UDP socket (repeatable)",
    )
    parser.add_argument("--forward", metavar="HOST:PORT", help="the metrics gateway to pass datagrams to")
    parser.add_argument("--echo", action="store_true", help="print every datagram to stdout")
    parser.add_argument("--ready-fd", type=int, metavar="FD", help="write one byte here once serving")
    args = parser.parse_args(argv)
    try:
        forward = resolve_udp(*split_address(args.forward))[0] if args.forward else None
        listeners = [socket.socket(fileno=fd) for fd in args.listen_fd]
        for address in args.listen:
            listeners += bind_udp(*split_address(address))
    except (ValueError, OSError) as exc:
        print(f"statsd-relay: {exc}", file=sys.stderr)
        return 2
    if not listeners:
        print("statsd-relay: nothing to listen on (give --listen or --listen-fd)", file=sys.stderr)
        return 2
    if not args.echo and forward is None:
        print(
            "statsd-relay: nothing to do with the datagrams (give --forward and/or --echo)", file=sys.stderr
        )
        return 2
    try:
        relay(listeners, forward, args.echo, args.ready_fd)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
