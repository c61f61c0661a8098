"""``rollout demo``: the command (``command``) and the reproducible county year it replays (``year``)."""

from cli.demo.command import commands

__all__ = ["commands"]
