"""The ways a notification can travel; ``default_channels`` wires them from the environment."""

from __future__ import annotations

from notifications.message import Channel
from notifications.secrets import Secrets

CHANNEL_NAMES = ("email", "dingtalk", "wecom", "feishu", "file")
CHAT_CHANNELS = ("dingtalk", "wecom", "feishu")


def default_channels(secrets: Secrets | None = None, timeout: float = 10.0) -> dict[str, Channel]:
    """Every channel, configured from ``ROLLOUT_SMTP_*`` and the secret store."""
    from .dingtalk import DingTalkChannel
    from .email import EmailChannel, SmtpConfig
    from .feishu import FeishuChannel
    from .file import FileChannel
    from .wecom import WeComChannel

    secrets = secrets or Secrets()
    return {
        "email": EmailChannel(SmtpConfig.from_env(), secrets),
        "dingtalk": DingTalkChannel(secrets, timeout=timeout),
        "wecom": WeComChannel(timeout=timeout),
        "feishu": FeishuChannel(secrets, timeout=timeout),
        "file": FileChannel(),
    }
