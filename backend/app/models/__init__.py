"""All ORM tables, one module per table. Importing this package registers every table on `Base`."""

from app.models.account_token import AccountToken, TokenPurpose
from app.models.agent import Agent
from app.models.api_key import ApiKey
from app.models.app_meta import AppMeta
from app.models.auth_session import AuthSession
from app.models.base import Base
from app.models.call_log import CallLog
from app.models.channel import Channel, ChannelStatus
from app.models.conversation import Conversation
from app.models.ip_rule import BlockedAttempt, IPRule
from app.models.mail_config import MailConfig
from app.models.mail_outbox import MailOutboxEntry
from app.models.message import Message
from app.models.recovery_code import RecoveryCode
from app.models.runtime_setting import RuntimeSetting, RuntimeSettingChange
from app.models.spent_challenge import SpentChallenge
from app.models.usage_rollup import LatencyDaily, UsageDaily
from app.models.user import User, UserRole, UserStatus
from app.models.user_avatar import UserAvatar

__all__ = [
    "AccountToken",
    "Agent",
    "ApiKey",
    "AppMeta",
    "AuthSession",
    "Base",
    "BlockedAttempt",
    "CallLog",
    "Channel",
    "ChannelStatus",
    "Conversation",
    "IPRule",
    "LatencyDaily",
    "MailConfig",
    "MailOutboxEntry",
    "Message",
    "RecoveryCode",
    "RuntimeSetting",
    "RuntimeSettingChange",
    "SpentChallenge",
    "TokenPurpose",
    "UsageDaily",
    "User",
    "UserAvatar",
    "UserRole",
    "UserStatus",
]
