# -*- coding: utf-8 -*-
"""The summary role's table line for one guest's result."""

from __future__ import annotations

DOCUMENTATION = r"""
name: summary_line
short_description: One line of the fleet migration table
description:
  - Formats one result of the migrate role (guest, source host, target
    host, result, boot verdict, seconds, error) as a fixed-width line.
options:
  _input:
    description: One element of xen2kvm_results.
    type: dict
    required: true
"""


def boot_cell(r):
    """The boot-check verdict, and the NIC's state when it was judged."""
    boot = r.get("boot_check") or "-"
    net = r.get("network")
    if boot != "-" and net and net != "not-judged":
        return "%s,net:%s" % (boot, net)
    return boot


def summary_line(r):
    """guest, source, target, result, boot verdict (and network), seconds, error."""
    error = r.get("error") or r.get("define_error") or ""
    return "%-24s %-14s %-14s %-11s %-15s %-8s %s" % (
        r.get("guest", ""),
        r.get("source_host", ""),
        r.get("target_host", ""),
        r.get("result", ""),
        boot_cell(r),
        r.get("seconds") if r.get("seconds") is not None else "-",
        error.splitlines()[0] if error else "",
    )


class FilterModule:
    """xen2kvm.migration filters."""

    def filters(self):
        return {"summary_line": summary_line}
