"""`shoal delete`: delete Workflows named on the command line, or matching a selector.

Only explicit names or a label selector, never "everything": a typo cannot empty a
namespace. Deleting a Workflow deletes its Jobs and pods with it (owner references);
its archived run, when there is an archive, stays readable with `shoal get`.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from shoal.cli.common import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    CliError,
    connection_args,
    fail,
    not_found,
    note,
    out,
    run_against_cluster,
)

if TYPE_CHECKING:
    from shoal.kube.api import KubeApi

__all__ = ["configure", "delete"]


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal delete`'s arguments and handler."""
    p.description = (
        "Delete the named Workflows, or those matching -l SELECTOR (with their Jobs and "
        "pods). Exit 1 when one of the names does not exist."
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="workflow names")
    p.add_argument(
        "-l", "--selector", metavar="SELECTOR", help="delete the workflows whose labels match"
    )
    connection_args(p)
    p.set_defaults(handler=delete)


def delete(args: argparse.Namespace) -> int:
    """Check that exactly one of NAMEs and -l is given (exit 2), then delete."""
    if bool(args.names) == bool(args.selector):
        return fail("name the workflows to delete, or give -l SELECTOR (not both)", EXIT_INVALID)

    async def run(api: KubeApi, namespace: str) -> int:
        names = args.names or await _matching(api, namespace, args.selector)
        if not names:
            note(f"No workflows matching {args.selector!r} in namespace {namespace}.")
            return EXIT_OK
        return await _delete(api, namespace, names)

    return run_against_cluster(args, run)


async def _matching(api: KubeApi, namespace: str, selector: str) -> list[str]:
    from shoal.kube.api import ApiError, workflows_path

    try:
        listing = await api.get(workflows_path(namespace), labelSelector=selector)
    except ApiError as err:
        if err.status == 404:
            raise CliError(not_found(err, namespace)) from None
        raise
    return sorted(o["metadata"]["name"] for o in listing.get("items") or [])


async def _delete(api: KubeApi, namespace: str, names: list[str]) -> int:
    from shoal.kube.api import ApiError, workflows_path

    code = EXIT_OK
    for name in names:
        try:
            deleted = await api.delete(workflows_path(namespace, name))
        except ApiError as err:
            if err.status == 404:  # the resource type itself is missing
                raise CliError(not_found(err, namespace)) from None
            raise
        if deleted:
            out(f"workflow {name} deleted")
        else:
            fail(f"workflow {name!r} not found in namespace {namespace!r}")
            code = EXIT_FAILED
    return code
