"""The ways a notification can travel; ``default_channels`` wires them from the environment."""

from __future__ import annotations

from notifications.message import Channel
from notifications.secrets import Secrets

CHANNEL_NAMES = ("email", "dingtalk", "wecom", "feishu", "file")
CHAT_CHANNELS = ("dingtalk", "wecom", "feishu")


def default_channels(secrets: Secrets | None = None, timeout: float = 10.0) -> dict[str, Channel]:
    """Every channel, configured from ``ROLLOUT_SMTP_*`` and the secret store."""
    from notifications.channels.dingtalk import DingTalkChannel
    from notifications.channels.email import EmailChannel, SmtpConfig
    from notifications.channels.feishu import FeishuChannel
    from notifications.channels.file import FileChannel
    from notifications.channels.wecom import WeComChannel

    secrets = secrets or Secrets()
    return {
        "email": EmailChannel(SmtpConfig.from_env(), secrets),
        "dingtalk": DingTalkChannel(secrets, timeout=timeout),
        "wecom": WeComChannel(timeout=timeout),
        "feishu": FeishuChannel(secrets, timeout=timeout),
        "file": FileChannel(),
    }
