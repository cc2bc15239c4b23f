"""All ORM tables, one module per table. Importing this package registers every table on `Base`."""

from app.models.account_token import AccountToken, TokenPurpose
from app.models.agent import Agent
from app.models.api_key import ApiKey
from app.models.app_meta import AppMeta
from app.models.auth_session import AuthSession
from app.models.balance import BalanceEntry, RedemptionCode, SpendAlert
from app.models.base import Base
from app.models.call_in_flight import CallInFlight
from app.models.call_log import CallLog
from app.models.channel import Channel, ChannelStatus
from app.models.conversation import Conversation
from app.models.ip_rule import BlockedAttempt, IPRule
from app.models.mail_config import MailConfig
from app.models.mail_outbox import MailOutboxEntry
from app.models.message import Message
from app.models.model_price import ModelPrice
from app.models.model_response import ModelResponse
from app.models.recovery_code import RecoveryCode
from app.models.runtime_setting import RuntimeSetting, RuntimeSettingChange
from app.models.saved_prompt import SavedPrompt
from app.models.server_instance import ServerInstance
from app.models.spent_challenge import SpentChallenge
from app.models.usage_rollup import LatencyDaily, UsageDaily
from app.models.user import User, UserRole, UserStatus
from app.models.user_avatar import UserAvatar

# Tables whose ids identify an owner (an account, a key, a channel, an agent, a conversation, a
# message, an IP rule): call logs, statistics and links keep those ids after a row is deleted, so
# an id must never be given to a new row. SQLite reuses the largest rowid after a delete unless a
# table is AUTOINCREMENT (migration 0009 rebuilt these tables that way); PostgreSQL's sequences
# never go back.
NEVER_REUSED_IDS = (
    "users",
    "api_keys",
    "channels",
    "agents",
    "conversations",
    "messages",
    "ip_rules",
)
for _name in NEVER_REUSED_IDS:
    Base.metadata.tables[_name].dialect_options["sqlite"]["autoincrement"] = True

__all__ = [
    "NEVER_REUSED_IDS",
    "AccountToken",
    "Agent",
    "ApiKey",
    "AppMeta",
    "AuthSession",
    "BalanceEntry",
    "Base",
    "BlockedAttempt",
    "CallInFlight",
    "CallLog",
    "Channel",
    "ChannelStatus",
    "Conversation",
    "IPRule",
    "LatencyDaily",
    "MailConfig",
    "MailOutboxEntry",
    "Message",
    "ModelPrice",
    "ModelResponse",
    "RecoveryCode",
    "RedemptionCode",
    "RuntimeSetting",
    "RuntimeSettingChange",
    "SavedPrompt",
    "ServerInstance",
    "SpendAlert",
    "SpentChallenge",
    "TokenPurpose",
    "UsageDaily",
    "User",
    "UserAvatar",
    "UserRole",
    "UserStatus",
]
