"""Blue-green releases: switch the Service between two colours of the service, and back.

    python3 scripts/k8s/blue_green.py [-n NAMESPACE] status
    python3 scripts/k8s/blue_green.py [-n NAMESPACE] switch green [--image IMAGE] [--keep-old]
    python3 scripts/k8s/blue_green.py [-n NAMESPACE] rollback [--keep-old]
    python3 scripts/k8s/blue_green.py [-n NAMESPACE] apply RENDERED.yaml

The cluster side is deploy/k8s/components/blue-green: Deployments `portfolio-service-blue` and
`-green` (each with its HPA and PDB) behind one Service whose selector names a colour with the
label `app.kubernetes.io/slot`. A switch to a colour:

1. sets its image (with --image) and scales it to the live colour's replica count (or
   --replicas), then waits until every one of its pods runs the new template and is ready;
2. points the Service at it, then checks that the Service's ready endpoints are exactly that
   colour's pods and that health requests through the Service succeed;
3. scales the old colour to 0 and waits until its pods are gone (unless --keep-old, which keeps
   it ready for an instant rollback).

Any failure puts things back as they were: a colour that never becomes ready within
--ready-timeout is scaled back (and its image restored) while the Service never left the old
colour; a failed check after the flip points the Service back at the old colour first. The
command exits non-zero and says what failed. `rollback` is a switch to the other colour with the
image it still has (the previous release). `apply` applies rendered manifests with the Service's
colour, each colour's replica count and image kept as the cluster has them, so re-applying
configuration never undoes a switch.

The switch logic (`switch`) talks to the cluster only through a driver. `KubectlDriver` (in
kubectl_driver.py) drives a real cluster with kubectl; the blue-green load test
(scripts/containers/blue_green_test.py) runs the same `switch` with processes as pods and
HAProxy as the Service. Standard library only (PyYAML for `apply`).
"""

import argparse
import dataclasses
import sys
import time

COLOURS = ("blue", "green")
SLOT_LABEL = "app.kubernetes.io/slot"


class SwitchFailed(Exception):
    """The switch did not complete; what was changed has been put back (the message says so)."""


class DriverError(Exception):
    """The driver could not carry out a step (a failed kubectl call, a replica that exited)."""


@dataclasses.dataclass(frozen=True)
class ColourState:
    image: str
    replicas: int


@dataclasses.dataclass(frozen=True)
class Progress:
    """A colour's pods: how many are wanted, how many run the current template and are ready, and
    how many exist at all (old templates and terminating pods included)."""

    wanted: int
    ready: int
    existing: int

    @property
    def complete(self):
        return self.ready == self.wanted == self.existing


@dataclasses.dataclass(frozen=True)
class Limits:
    ready_timeout_s: float = 300.0
    # After the flip: until the Service's endpoints are exactly the new colour's pods.
    verify_timeout_s: float = 30.0
    # Health requests through the Service that must all succeed after the flip.
    traffic_checks: int = 10
    # Until the old colour's pods are gone (preStop + drain + shutdown, with room).
    scale_down_timeout_s: float = 120.0
    poll_s: float = 1.0


def other(colour):
    return COLOURS[1 - COLOURS.index(colour)]


def wait_until(what, timeout_s, probe, poll_s, clock):
    """Calls probe() until it returns (True, _); returns the seconds taken, or raises DriverError
    with the last state probe() described."""
    started = clock.monotonic()
    while True:
        done, state = probe()
        if done:
            return clock.monotonic() - started
        if clock.monotonic() - started >= timeout_s:
            raise DriverError(f"{what}: not within {timeout_s:g} s ({state})")
        clock.sleep(poll_s)


def switch(driver, target, image=None, replicas=None, keep_old=False, limits=Limits(), clock=time, log=print):
    """Moves the Service's traffic to `target`; returns the step timings in seconds. Raises
    SwitchFailed after putting everything back when a step fails."""
    if target not in COLOURS:
        raise SwitchFailed(f"unknown colour {target!r}: one of {', '.join(COLOURS)}")
    old = driver.live()
    if target == old:
        raise SwitchFailed(f"{target} is already live: switch to {other(target)} to release on the idle colour")
    before = driver.state(target)
    wanted = replicas if replicas is not None else max(driver.state(old).replicas, 1)
    started = clock.monotonic()
    timings = {}

    def restore_target():
        log(f"rolling back: {target} back to {before.replicas} replicas of {before.image}")
        driver.scale(target, before.replicas)
        if driver.state(target).image != before.image:
            driver.set_image(target, before.image)

    log(f"{old} is live; bringing up {wanted} replicas of {target} ({image or before.image})")
    try:
        if image and image != before.image:
            driver.set_image(target, image)
        driver.scale(target, wanted)
        timings["ready_s"] = wait_until(
            f"{target}: all {wanted} pods ready", limits.ready_timeout_s,
            lambda: (lambda p: (p.complete and p.wanted == wanted, p))(driver.progress(target)),
            limits.poll_s, clock)
    except DriverError as error:
        restore_target()
        raise SwitchFailed(f"{target} did not become ready ({error}); traffic stayed on {old}, "
                           f"{target} is back as it was") from error
    log(f"{target}: {wanted} pods ready after {timings['ready_s']:.1f} s; pointing the Service at {target}")

    flipped = clock.monotonic()
    driver.point_service(target)
    try:
        wait_until(f"the Service's ready endpoints are exactly {target}'s pods", limits.verify_timeout_s,
                   lambda: (lambda reason: (reason is None, reason))(driver.serving_problem(target, wanted)),
                   limits.poll_s, clock)
        driver.check_traffic(limits.traffic_checks)
    except DriverError as error:
        log(f"check after the flip failed ({error}); pointing the Service back at {old}")
        driver.point_service(old)
        try:
            wait_until(f"the Service back on {old}", limits.verify_timeout_s,
                       lambda: (lambda reason: (reason is None, reason))(
                           driver.serving_problem(old, driver.progress(old).wanted)),
                       limits.poll_s, clock)
        finally:
            restore_target()
        raise SwitchFailed(f"traffic check on {target} failed ({error}); the Service is back on {old}, "
                           f"{target} is back as it was") from error
    timings["flip_s"] = clock.monotonic() - flipped
    timings["traffic_moved_s"] = clock.monotonic() - started
    log(f"the Service serves {target} ({timings['flip_s']:.1f} s after the flip)")

    if keep_old:
        log(f"keeping {old} ready for an instant rollback")
    else:
        log(f"scaling {old} to 0")
        driver.scale(old, 0)
        try:
            timings["old_gone_s"] = wait_until(
                f"{old}: pods gone", limits.scale_down_timeout_s,
                lambda: (lambda p: (p.existing == 0, p))(driver.progress(old)), limits.poll_s, clock)
        except DriverError as error:
            # Traffic is on the target and verified: the switch stands, the leftovers are reported.
            log(f"warning: {error}; the switch to {target} stands")
    timings["total_s"] = clock.monotonic() - started
    log(f"switched {old} -> {target} in {timings['total_s']:.1f} s "
        f"({', '.join(f'{k} {v:.1f}' for k, v in timings.items())})")
    return timings


def rollback(driver, keep_old=False, limits=Limits(), clock=time, log=print):
    """Back to the colour that is not live, on the image it still runs (the previous release)."""
    return switch(driver, other(driver.live()), keep_old=keep_old, limits=limits, clock=clock, log=log)


def status(driver):
    live = driver.live()
    lines = []
    for colour in COLOURS:
        state, progress = driver.state(colour), driver.progress(colour)
        lines.append(f"{colour}{' (live)' if colour == live else ''}: {state.image}, "
                     f"{progress.ready}/{progress.wanted} ready, {progress.existing} pods")
    return "\n".join(lines)


def pin_to_live(documents, name, live, states):
    """Rendered manifests with the cluster's switch state kept: the Service's colour, each
    colour's replica count and image. `states` maps a colour to its ColourState, or to None
    when that Deployment does not exist yet (then the rendered values stand)."""
    pinned = []
    for doc in documents:
        if not doc:
            continue
        kind, doc_name = doc.get("kind"), doc.get("metadata", {}).get("name")
        if kind == "Service" and doc_name == name and live:
            doc["spec"]["selector"][SLOT_LABEL] = live
        for colour, state in states.items():
            if kind == "Deployment" and doc_name == f"{name}-{colour}" and state is not None:
                doc["spec"]["replicas"] = state.replicas
                doc["spec"]["template"]["spec"]["containers"][0]["image"] = state.image
        pinned.append(doc)
    return pinned


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--namespace", default="portfolio")
    parser.add_argument("--name", default="portfolio-service", help="the Service; Deployments are NAME-blue, NAME-green")
    parser.add_argument("--context", help="kubectl context")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="the live colour and each colour's image and pods")
    for command in ("switch", "rollback"):
        sub = commands.add_parser(command)
        if command == "switch":
            sub.add_argument("colour", choices=COLOURS)
            sub.add_argument("--image", help="the image the colour runs from now on (default: the one it has)")
            sub.add_argument("--replicas", type=int, help="pods to bring up (default: as many as the live colour)")
        sub.add_argument("--keep-old", action="store_true", help="leave the old colour running, for an instant rollback")
        sub.add_argument("--ready-timeout", type=float, default=Limits.ready_timeout_s, metavar="SECONDS")
        sub.add_argument("--verify-timeout", type=float, default=Limits.verify_timeout_s, metavar="SECONDS")
    apply = commands.add_parser("apply", help="kubectl apply rendered manifests, keeping the switch state")
    apply.add_argument("rendered")
    args = parser.parse_args(argv)

    from kubectl_driver import KubectlDriver  # noqa: PLC0415 (it imports this module's types)

    driver = KubectlDriver(args.namespace, args.name, context=args.context)
    try:
        if args.command == "status":
            print(status(driver))
        elif args.command == "apply":
            driver.apply(args.rendered)
        else:
            limits = Limits(ready_timeout_s=args.ready_timeout, verify_timeout_s=args.verify_timeout)
            if args.command == "switch":
                switch(driver, args.colour, image=args.image, replicas=args.replicas, keep_old=args.keep_old,
                       limits=limits)
            else:
                rollback(driver, keep_old=args.keep_old, limits=limits)
    except (SwitchFailed, DriverError) as failure:
        sys.exit(f"blue-green {args.command} FAILED: {failure}")


if __name__ == "__main__":
    # Run as the module `blue_green`, the one kubectl_driver imports, so its exceptions are ours.
    import blue_green  # noqa: PLC0415

    blue_green.main()
