"""Selfnest environment settings: one model, read once from config/<env>.yaml at the edge.

A user's mistake in a config file becomes a `ConfigError` whose message is one line naming the file, the key and
what is allowed; the entry points print it and exit non-zero instead of showing a traceback.
"""

from __future__ import annotations

import ipaddress
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from refarch.constructs.aws.database import POSTGRES_VERSIONS
from refarch.constructs.aws.lifecycle import (
    WATERFALL,
    StorageClass,
    Transition,
    backup_rule_problems,
    lifecycle_problems,
)
from refarch.constructs.aws.retention import LOG_RETENTION_DAYS

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"

# Fargate task sizes: CPU units -> allowed memory (MiB).
FARGATE_MEMORY_BY_CPU: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
}
VPC_PREFIX_RANGE = (16, 28)
SUBNET_PREFIX_RANGE = (16, 28)
AZ_COUNT_RANGE = (2, 3)
SQS_VISIBILITY_PER_CONSUMER_TIMEOUT = 6
# Documentation values a config may ship with but a deploy must not use: AWS's example account id and the domain
# names RFC 2606 reserves for examples and tests.
EXAMPLE_ACCOUNT = "123456789012"
EXAMPLE_DOMAINS = ("example", "example.com", "example.net", "example.org", "test", "invalid")
# API Gateway refuses WebSocket frames over 32 KB (and messages over 128 KB); a larger limit would never apply.
WEBSOCKET_FRAME_LIMIT_BYTES = 32 * 1024


def _check_log_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"{value} is not a CloudWatch Logs retention period (allowed: {LOG_RETENTION_DAYS})")
    return value


LogRetentionDays = Annotated[int, AfterValidator(_check_log_retention)]


def check_vpc_cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError as error:
        raise ValueError(f"must be an IPv4 network such as 10.0.0.0/16 ({error})") from None
    low, high = VPC_PREFIX_RANGE
    if not low <= network.prefixlen <= high:
        raise ValueError(f"prefix must be from /{low} to /{high} (got /{network.prefixlen})")
    return value


class ConfigError(Exception):
    """A configuration mistake, worded for the person who made it (one line)."""


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SubnetMasks(_Settings):
    """Prefix length of each subnet tier's per-AZ subnet."""

    public: Annotated[int, Field(ge=SUBNET_PREFIX_RANGE[0], le=SUBNET_PREFIX_RANGE[1])]
    app: Annotated[int, Field(ge=SUBNET_PREFIX_RANGE[0], le=SUBNET_PREFIX_RANGE[1])]
    data: Annotated[int, Field(ge=SUBNET_PREFIX_RANGE[0], le=SUBNET_PREFIX_RANGE[1])]


class NetworkSettings(_Settings):
    vpc_cidr: str
    availability_zones: list[str]
    # none: app tasks in public subnets (cheapest); single: one shared NAT (private tasks, one AZ's egress);
    # one_per_az: a NAT in every AZ, so losing a zone does not cut the others' egress.
    nat_gateways: Literal["none", "single", "one_per_az"]
    subnet_masks: SubnetMasks
    flow_log_retention_days: LogRetentionDays
    # The Secrets Manager interface endpoint the master secret's in-VPC rotation function calls (it has no other way
    # out). Only DR tiers with a cross-region database replica have that function and endpoint; elsewhere RDS manages
    # and rotates the master password itself and this key is not read (constructs/aws/database.py,
    # rds_manages_master_password). One network interface in each of the first this-many zones, billed per
    # zone-hour; null: every zone. Fewer zones trade availability (rotation waits while that zone is down; callers
    # elsewhere cross zones), not security.
    secrets_endpoint_zones: Annotated[int, Field(ge=1, le=AZ_COUNT_RANGE[1])] | None = None

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr_in_range(cls, value: str) -> str:
        return check_vpc_cidr(value)

    @field_validator("availability_zones")
    @classmethod
    def _az_count(cls, value: list[str]) -> list[str]:
        low, high = AZ_COUNT_RANGE
        if not low <= len(value) <= high:
            raise ValueError(f"must list {low} to {high} availability zones (got {len(value)})")
        if len(set(value)) != len(value):
            raise ValueError("must not repeat an availability zone")
        return value

    @model_validator(mode="after")
    def _subnets_fit(self) -> NetworkSettings:
        subnet_cidrs(self)
        if self.secrets_endpoint_zones is not None and self.secrets_endpoint_zones > len(self.availability_zones):
            raise ValueError(f"secrets_endpoint_zones ({self.secrets_endpoint_zones}) is more than the "
                             f"{len(self.availability_zones)} availability_zones")
        return self

    @property
    def secrets_endpoint_availability_zones(self) -> list[str] | None:
        """The zones of the Secrets Manager endpoint, or None for every zone."""
        return None if self.secrets_endpoint_zones is None else self.availability_zones[:self.secrets_endpoint_zones]

    @property
    def nat_gateway_count(self) -> int:
        return {"none": 0, "single": 1, "one_per_az": len(self.availability_zones)}[self.nat_gateways]


class DatabaseSettings(_Settings):
    engine_version: Annotated[str, Field(pattern=r"^1[4-8]\.\d+$")]
    instance_type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*\.[a-z0-9]+$")]
    allocated_storage_gib: Annotated[int, Field(ge=20, le=65536)]
    max_allocated_storage_gib: Annotated[int, Field(ge=20, le=65536)]
    multi_az: bool
    deletion_protection: bool
    backup_retention_days: Annotated[int, Field(ge=1, le=35)]
    secret_rotation_days: Annotated[int, Field(ge=1, le=365)]
    log_retention_days: LogRetentionDays

    @field_validator("engine_version")
    @classmethod
    def _known_to_cdk(cls, value: str) -> str:
        if value not in POSTGRES_VERSIONS:
            major = value.split(".")[0]
            same_major = sorted((v for v in POSTGRES_VERSIONS if v.split(".")[0] == major),
                                key=lambda v: tuple(int(part) for part in v.split(".")))
            raise ValueError(f"{value} is not a PostgreSQL version aws-cdk-lib knows (known {major}.x: "
                             f"{', '.join(same_major) or 'none'}; see the comment at database.engine_version)")
        return value

    @model_validator(mode="after")
    def _storage_grows(self) -> DatabaseSettings:
        if self.max_allocated_storage_gib < self.allocated_storage_gib:
            raise ValueError(
                f"max_allocated_storage_gib ({self.max_allocated_storage_gib}) must be at least "
                f"allocated_storage_gib ({self.allocated_storage_gib})"
            )
        return self


class WebSettings(_Settings):
    cpu: Literal[256, 512, 1024, 2048, 4096]
    memory_mib: int
    # 0: no task runs while nobody calls the API; the first request (answered 503) starts one within about two
    # minutes, and 15 quiet minutes stop it again. Trades availability for cost (lab); 1 or more keeps one warm.
    min_tasks: Annotated[int, Field(ge=0, le=100)]
    max_tasks: Annotated[int, Field(ge=1, le=100)]
    container_port: Annotated[int, Field(ge=1024, le=65535)]
    certificate_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[\w-]+$")] | None
    waf: bool
    waf_requests_per_5_minutes_per_ip: Annotated[int, Field(ge=10, le=2_000_000_000)]
    log_retention_days: LogRetentionDays
    # Abuse limits the API enforces per signed-in user (answered with 429 and Retry-After).
    max_open_bookings_per_client: Annotated[int, Field(ge=1, le=100)] = 5
    booking_changes_per_hour: Annotated[int, Field(ge=1, le=1000)] = 20     # bookings + cancellations
    sessions_page_size: Annotated[int, Field(ge=1, le=500)] = 50

    @model_validator(mode="after")
    def _task_shape(self) -> WebSettings:
        allowed = FARGATE_MEMORY_BY_CPU[self.cpu]
        if self.memory_mib not in allowed:
            raise ValueError(
                f"memory_mib {self.memory_mib} is not a Fargate size for cpu {self.cpu} "
                f"(allowed: {', '.join(str(size) for size in allowed)})"
            )
        if self.max_tasks < self.min_tasks:
            raise ValueError(f"max_tasks ({self.max_tasks}) must be at least min_tasks ({self.min_tasks})")
        return self


EmailAddress = Annotated[str, Field(pattern=r"^[^@\s]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$")]
# Cognito prefix domains: lowercase letters, digits and hyphens, not starting or ending with a hyphen, at most 63
# characters, and never containing the reserved words aws, amazon or cognito.
COGNITO_RESERVED_WORDS = ("aws", "amazon", "cognito")


class SesEmailSettings(_Settings):
    """Cognito sends its email (verification codes, invitations) through your Amazon SES identity.

    `from_address` (or its domain) must be a verified SES identity in `ses_region`, and the account must be out of
    the SES sandbox to reach users who are not themselves verified identities.
    """

    from_address: EmailAddress
    from_name: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    reply_to: EmailAddress | None = None
    # Set when the identity is a verified domain (any address at it may send); null: the address itself is verified.
    verified_domain: Annotated[str, Field(pattern=r"^[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$")] | None = None
    # null: the user pool's own region. Cognito also accepts us-east-1, us-west-2 or eu-west-1 for older pools.
    ses_region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")] | None = None

    @model_validator(mode="after")
    def _address_in_domain(self) -> SesEmailSettings:
        if self.verified_domain is not None and not self.from_address.endswith(f"@{self.verified_domain}"):
            raise ValueError(f"from_address {self.from_address!r} is not an address at verified_domain "
                             f"{self.verified_domain!r}")
        return self


def _check_domain_prefix(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", value):
        raise ValueError(f"{value!r} is not a Cognito domain prefix (1-63 lowercase letters, digits and hyphens, "
                         "not starting or ending with a hyphen)")
    reserved = [word for word in COGNITO_RESERVED_WORDS if word in value]
    if reserved:
        raise ValueError(f"{value!r} contains {reserved[0]!r}, which Cognito reserves in domain prefixes")
    return value


class IdentitySettings(_Settings):
    """The Cognito user pool: who may sign up, how they sign in, how long tokens live."""

    password_min_length: Annotated[int, Field(ge=12, le=99)]
    threat_protection: Literal["enforced", "audit", "off"]
    mobile_callback_urls: Annotated[list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9+.-]*://\S+$")]],
                                    Field(min_length=1)]
    web_callback_urls: Annotated[list[Annotated[str, Field(pattern=r"^https://\S+$")]], Field(min_length=1)]
    access_token_minutes: Annotated[int, Field(ge=5, le=1440)]
    refresh_token_days: Annotated[int, Field(ge=1, le=3650)]
    log_retention_days: LogRetentionDays
    # optional: anonymous clients need no second factor (therapists must have one, see the pre-token trigger);
    # required: every user pairs an authenticator app (TOTP) at first sign-in.
    mfa: Literal["optional", "required"] = "optional"
    # The managed-login domain is <prefix>.auth.<region>.amazoncognito.com, unique across all AWS customers in the
    # region; null derives selfnest-<env>-<account id>, which is.
    domain_prefix: Annotated[str, AfterValidator(_check_domain_prefix)] | None = None
    # null: Cognito's own sender (a few dozen emails a day, fine for dev); prod sends through SES.
    ses_email: SesEmailSettings | None = None


class ProvisionedCapacity(_Settings):
    """Provisioned throughput for a DynamoDB table (`refarch calc dynamodb` sizes it); auto scaling may go higher."""

    read_units: Annotated[int, Field(ge=1, le=40000)]
    write_units: Annotated[int, Field(ge=1, le=40000)]


ConsumerTable = Literal["inbox", "audit"]


class MessagingSettings(_Settings):
    """Session events: the topic, the consumer queues and the Lambda functions that drain them."""

    consumer_timeout_seconds: Annotated[int, Field(ge=3, le=900)]
    visibility_timeout_seconds: Annotated[int, Field(ge=0, le=43200)]
    max_receive_count: Annotated[int, Field(ge=1, le=1000)]
    batch_size: Annotated[int, Field(ge=1, le=10)]
    dead_letter_retention_days: Annotated[int, Field(ge=1, le=14)]
    notification_retention_days: Annotated[int, Field(ge=1, le=3650)]
    log_retention_days: LogRetentionDays
    # Tables listed here use provisioned capacity; every other table stays on demand (the default).
    provisioned_tables: dict[ConsumerTable, ProvisionedCapacity] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _visibility_covers_retries(self) -> MessagingSettings:
        # AWS: set the source queue's visibility timeout to at least six times the function timeout, so a batch
        # that Lambda retries after throttling is not released to another consumer mid-flight.
        minimum = SQS_VISIBILITY_PER_CONSUMER_TIMEOUT * self.consumer_timeout_seconds
        if self.visibility_timeout_seconds < minimum:
            raise ValueError(
                f"visibility_timeout_seconds ({self.visibility_timeout_seconds}) must be at least "
                f"{SQS_VISIBILITY_PER_CONSUMER_TIMEOUT} x consumer_timeout_seconds ({self.consumer_timeout_seconds})"
                f" = {minimum}"
            )
        return self


GENERATIONS = ("daily", "weekly", "monthly")
RetentionDays = Annotated[int, Field(ge=1, le=36500)]


class BucketGeneration(_Settings):
    """One generation prefix of the backup bucket (daily/, weekly/, monthly/): where its objects go, when they expire.

    `transitions` maps storage class -> age in days when objects move there; S3's rules and minimum storage
    durations are checked here, so a rule S3 would refuse (or bill for days it never keeps) never reaches a synth.
    """

    transitions: dict[Annotated[StorageClass, Strict(False)], Annotated[int, Field(ge=0, le=36500)]] = Field(
        default_factory=dict)
    expire_after_days: RetentionDays

    @property
    def transition_list(self) -> list[Transition]:
        """The transitions in the order objects meet them (by age), whatever order the file lists them in."""
        return sorted((Transition(storage_class=storage_class, after_days=days)
                       for storage_class, days in self.transitions.items()),
                      key=lambda transition: (transition.after_days, WATERFALL.index(transition.storage_class)))

    @model_validator(mode="after")
    def _respects_s3_minimums(self) -> BucketGeneration:
        problems = lifecycle_problems(self.transition_list, self.expire_after_days)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class BackupBucketSettings(_Settings):
    daily: BucketGeneration
    weekly: BucketGeneration
    monthly: BucketGeneration
    noncurrent_version_expiry_days: Annotated[int, Field(ge=1, le=3650)]

    @property
    def generations(self) -> dict[str, BucketGeneration]:
        return {name: getattr(self, name) for name in GENERATIONS}


class PlanGeneration(_Settings):
    """One AWS Backup rule's retention: optionally move to cold storage, then delete."""

    delete_after_days: RetentionDays
    move_to_cold_storage_after_days: RetentionDays | None = None

    @model_validator(mode="after")
    def _respects_cold_storage_minimum(self) -> PlanGeneration:
        problems = backup_rule_problems(move_to_cold_storage_after_days=self.move_to_cold_storage_after_days,
                                        delete_after_days=self.delete_after_days)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class VaultLock(_Settings):
    """AWS Backup Vault Lock. Without `changeable_for_days` it is governance mode (removable with IAM permission);
    with it, compliance mode: after that many days nobody, root included, can shorten retention or delete."""

    min_retention_days: RetentionDays
    max_retention_days: RetentionDays
    changeable_for_days: Annotated[int, Field(ge=3, le=36500)] | None


class BackupPlanSettings(_Settings):
    daily: PlanGeneration
    weekly: PlanGeneration
    monthly: PlanGeneration
    vault_lock: VaultLock | None

    @property
    def generations(self) -> dict[str, PlanGeneration]:
        return {name: getattr(self, name) for name in GENERATIONS}

    @model_validator(mode="after")
    def _retention_fits_the_lock(self) -> BackupPlanSettings:
        lock = self.vault_lock
        if lock is None:
            return self
        if lock.max_retention_days < lock.min_retention_days:
            raise ValueError(f"vault_lock.max_retention_days ({lock.max_retention_days}) must be at least "
                             f"min_retention_days ({lock.min_retention_days})")
        for name, rule in self.generations.items():
            if not lock.min_retention_days <= rule.delete_after_days <= lock.max_retention_days:
                raise ValueError(
                    f"{name}.delete_after_days ({rule.delete_after_days}) is outside the vault lock's "
                    f"{lock.min_retention_days} to {lock.max_retention_days} days: the locked vault would refuse "
                    f"its recovery points")
        return self


class BackupSettings(_Settings):
    bucket: BackupBucketSettings
    # null: no AWS Backup vault (dev: a vault holding recovery points cannot be removed by `cdk destroy`).
    plan: BackupPlanSettings | None


DrTier = Literal["backup_restore", "pilot_light", "warm_standby"]
DR_TIERS: tuple[DrTier, ...] = ("backup_restore", "pilot_light", "warm_standby")
# Tiers that keep the data live in the DR region (RDS read replica, DynamoDB global-table replicas).
LIVE_DATA_TIERS: tuple[DrTier, ...] = ("pilot_light", "warm_standby")
# Route 53 health checkers probe every 10 or 30 seconds (10 is the "fast" interval, billed extra).
HEALTH_CHECK_INTERVALS = (10, 30)
ROUTE53_ZONE_ID = r"^Z[A-Z0-9]{1,32}$"
DOMAIN_NAME = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"


class FailoverSettings(_Settings):
    """Warm standby's DNS failover: one name in a Route 53 public hosted zone, answered by the primary region's load
    balancer while its health check passes and by the DR region's otherwise (failover alias records)."""

    hosted_zone_id: Annotated[str, Field(pattern=ROUTE53_ZONE_ID)]
    zone_name: Annotated[str, Field(pattern=DOMAIN_NAME)]
    record_name: Annotated[str, Field(pattern=DOMAIN_NAME)]      # what clients call: the zone apex or a name in it
    # Route 53 calls the primary unhealthy after this many consecutive failed probes, each this many seconds apart:
    # their product is how long an outage goes unnoticed, the first part of the tier's RTO.
    health_check_interval_seconds: Literal[10, 30] = 30
    failure_threshold: Annotated[int, Field(ge=1, le=10)] = 3

    @model_validator(mode="after")
    def _record_in_zone(self) -> FailoverSettings:
        if self.record_name != self.zone_name and not self.record_name.endswith(f".{self.zone_name}"):
            raise ValueError(f"record_name {self.record_name!r} is not in zone_name {self.zone_name!r}")
        return self

    @property
    def detection_seconds(self) -> int:
        """How long Route 53 takes at most to call a dead primary unhealthy (interval x threshold)."""
        return self.health_check_interval_seconds * self.failure_threshold


class DrSettings(_Settings):
    """Disaster recovery: the tier and the second region it uses.

    `backup_restore`: backups are copied (AWS Backup) and replicated (S3) to `region`; infrastructure is redeployed
    from code after a disaster. `pilot_light`: also keeps a live replica of the data there (an RDS cross-region read
    replica; DynamoDB global-table replicas in `replica_regions`), in its own small VPC. `warm_standby`: pilot light
    plus a scaled-down working web tier in that VPC (`standby_tasks` API tasks behind their own load balancer), and
    Route 53 failover records that send clients there when the primary's health check fails (`failover`).
    """

    tier: DrTier
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")] | None
    vpc_cidr: str | None = None
    availability_zones: list[str] = Field(default_factory=list)
    # warm_standby: API tasks the standby runs before failover (auto scaling takes it to web.max_tasks after).
    standby_tasks: Annotated[int, Field(ge=1, le=100)] = 1
    # warm_standby with HTTPS: an ACM certificate in dr.region for the standby's load balancer (ACM is regional).
    certificate_arn: Annotated[str, Field(
        pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[\w-]+$")] | None = None
    failover: FailoverSettings | None = None

    @model_validator(mode="after")
    def _tier_has_what_it_needs(self) -> DrSettings:
        if self.region is None:
            if self.tier in LIVE_DATA_TIERS:
                raise ValueError(f"tier {self.tier} needs dr.region (a second region for the live replica); "
                                 "set dr.region, dr.vpc_cidr and dr.availability_zones, or use backup_restore")
            return self
        for zone in self.availability_zones:
            if not re.fullmatch(re.escape(self.region) + r"[a-z]", zone):
                raise ValueError(f"availability_zones: {zone!r} is not a zone of dr.region {self.region}")
        if self.tier in LIVE_DATA_TIERS:
            low, high = AZ_COUNT_RANGE
            if not low <= len(self.availability_zones) <= high or self.vpc_cidr is None:
                raise ValueError(f"tier {self.tier} needs dr.vpc_cidr and {low} to {high} dr.availability_zones "
                                 f"of {self.region} for the replica's subnets")
        if self.tier == "warm_standby" and self.failover is None:
            raise ValueError("tier warm_standby needs dr.failover (hosted_zone_id, zone_name, record_name): the "
                             "Route 53 records that move clients to the standby")
        if (self.tier == "warm_standby" and self.certificate_arn is not None
                and self.certificate_arn.split(":")[3] != self.region):
            raise ValueError(f"certificate_arn: {self.certificate_arn} is not in dr.region {self.region} (a load "
                             "balancer can only use an ACM certificate of its own region)")
        return self

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr_in_range(cls, value: str | None) -> str | None:
        return None if value is None else check_vpc_cidr(value)

    @property
    def replica_regions(self) -> list[str]:
        """Regions that hold live data replicas: DynamoDB global tables pass this to TableV2(replicas=...)."""
        return [self.region] if self.tier in LIVE_DATA_TIERS and self.region is not None else []

    @property
    def standby_region(self) -> str | None:
        """Where a scaled-down web tier runs before any disaster (warm_standby only)."""
        return self.region if self.tier == "warm_standby" else None

    @property
    def copy_region(self) -> str | None:
        """Where backups are copied and the backup bucket replicated (every tier, when a DR region is set)."""
        return self.region


ChatTable = Literal["messages", "connections"]


class ChatSettings(_Settings):
    """Real-time session chat: who may join when, how big a frame may be, how long history is kept."""

    join_minutes_before_start: Annotated[int, Field(ge=0, le=120)]
    join_minutes_after_end: Annotated[int, Field(ge=0, le=120)]
    max_frame_bytes: Annotated[int, Field(ge=256, le=WEBSOCKET_FRAME_LIMIT_BYTES)]
    message_retention_days: Annotated[int, Field(ge=1, le=3650)]
    throttle_rate_per_second: Annotated[int, Field(ge=1, le=10000)]
    throttle_burst: Annotated[int, Field(ge=1, le=5000)]
    handler_timeout_seconds: Annotated[int, Field(ge=3, le=29)]
    log_retention_days: LogRetentionDays
    # Abuse limits, answered with an error frame: messages one connection may send per minute, messages one session
    # may hold, how many messages a page of history holds (a join sends the newest page; `fetchHistory` older ones)
    # and how many older pages one connection may fetch per minute.
    messages_per_minute_per_connection: Annotated[int, Field(ge=1, le=600)] = 30
    max_messages_per_session: Annotated[int, Field(ge=1, le=100_000)] = 2000
    history_page_messages: Annotated[int, Field(ge=1, le=1000)] = 200
    history_pages_per_minute_per_connection: Annotated[int, Field(ge=1, le=600)] = 20
    # Tables listed here use provisioned capacity; every other chat table stays on demand (the default).
    provisioned_tables: dict[ChatTable, ProvisionedCapacity] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _burst_covers_rate(self) -> ChatSettings:
        # API Gateway's token bucket: a burst smaller than the steady rate would throttle below that rate.
        if self.throttle_burst < self.throttle_rate_per_second:
            raise ValueError(f"throttle_burst ({self.throttle_burst}) must be at least throttle_rate_per_second "
                             f"({self.throttle_rate_per_second})")
        return self


# AWS Budgets allows up to 10 notifications per budget (each actual or forecast threshold is one).
MAX_BUDGET_NOTIFICATIONS = 10
AlertPercent = Annotated[int, Field(ge=1, le=1000)]


class BudgetSettings(_Settings):
    """An AWS Budget over this environment's cost (resources carrying its `cost_tag` tag), alerting by email."""

    monthly_limit_usd: Annotated[int, Field(ge=1, le=1_000_000)]
    email: EmailAddress
    actual_alert_percents: Annotated[list[AlertPercent], Field(min_length=1)]
    forecast_alert_percents: list[AlertPercent] = Field(default_factory=list)
    # The tag whose value (from `tags`) marks this environment's resources; it must be activated as a cost
    # allocation tag in the Billing console, or the budget sees nothing.
    cost_tag: Annotated[str, Field(min_length=1, max_length=128)] = "environment"

    @model_validator(mode="after")
    def _within_budget_limits(self) -> BudgetSettings:
        for name, percents in (("actual_alert_percents", self.actual_alert_percents),
                               ("forecast_alert_percents", self.forecast_alert_percents)):
            if len(set(percents)) != len(percents):
                raise ValueError(f"{name}: must not repeat a threshold")
        count = len(self.actual_alert_percents) + len(self.forecast_alert_percents)
        if count > MAX_BUDGET_NOTIFICATIONS:
            raise ValueError(f"{count} alert thresholds; AWS Budgets allows at most {MAX_BUDGET_NOTIFICATIONS} "
                             "notifications per budget (actual and forecast together)")
        return self


class OperationsSettings(_Settings):
    """Who hears about this environment: alarms by email, and a spending guard."""

    # SNS emails a confirmation link first: alarms arrive only once it is clicked.
    alarm_email: EmailAddress
    budget: BudgetSettings
    # all: every alarm (the paging ones plus per-function, latency, utilisation and queue-age alarms, each $0.10 a
    # month); paging: only those behind the composite "service unhealthy" alarm, and the dead-letter alarms.
    alarms: Literal["all", "paging"] = "all"
    dashboard: bool = True       # $3 a month list price (the free tier covers three dashboards per account)


class EncryptionSettings(_Settings):
    """Customer-managed KMS keys ($1 a month each, list price). Either way every data store, log group, topic,
    queue and secret is encrypted with a customer-managed key that rotates yearly.

    per_purpose: one key per tier (8): each key policy admits only its own services, and disabling one key cuts
    off one tier. per_environment: one key for the whole environment (stack selfnest-<env>-keys) that every tier
    uses. Choose when an environment is first deployed: moving a database to another key replaces it (RDS cannot
    re-encrypt in place), so switching a deployed environment loses its database.
    """

    keys: Literal["per_purpose", "per_environment"] = "per_purpose"


class SelfnestSettings(_Settings):
    """Everything that differs between Selfnest environments."""

    environment: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,15}$")]
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")]
    retain_data: bool
    network: NetworkSettings
    database: DatabaseSettings
    web: WebSettings
    identity: IdentitySettings
    messaging: MessagingSettings

    backup: BackupSettings
    dr: DrSettings

    chat: ChatSettings
    operations: OperationsSettings
    encryption: EncryptionSettings = Field(default_factory=EncryptionSettings)
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _zones_in_region(self) -> SelfnestSettings:
        for zone in self.network.availability_zones:
            if not re.fullmatch(re.escape(self.region) + r"[a-z]", zone):
                raise ValueError(f"network.availability_zones: {zone!r} is not a zone of region {self.region}")
        if self.dr.region == self.region:
            raise ValueError(f"dr.region: must differ from region ({self.region}): a disaster takes both out")
        if self.dr.vpc_cidr is not None and ipaddress.IPv4Network(self.dr.vpc_cidr).overlaps(
                ipaddress.IPv4Network(self.network.vpc_cidr)):
            raise ValueError(f"dr.vpc_cidr: {self.dr.vpc_cidr} overlaps network.vpc_cidr {self.network.vpc_cidr} "
                             f"(the two VPCs must stay peerable)")
        if (self.dr.tier == "warm_standby" and self.web.certificate_arn is not None
                and self.dr.certificate_arn is None):
            raise ValueError("dr.certificate_arn: missing; web.certificate_arn serves HTTPS, so the warm standby's "
                             f"load balancer needs an ACM certificate of {self.dr.region} for the same name, or "
                             "clients failing over would find no HTTPS there")
        if self.dr.tier == "warm_standby" and self.web.min_tasks == 0:
            # Evaluate-target-health calls a primary without targets unhealthy: an idle primary would send every
            # client to the read-only standby (and Route 53's probes would keep waking it anyway).
            raise ValueError("web.min_tasks: 0 cannot serve with dr.tier warm_standby: a primary idling at zero "
                             "tasks fails its failover health check; keep at least 1 task")
        if self.operations.budget.cost_tag not in self.tags:
            raise ValueError(f"operations.budget.cost_tag: {self.operations.budget.cost_tag!r} is not one of tags "
                             f"({', '.join(self.tags) or 'none'}); the budget filters costs by that tag's value")
        return self

    def placeholders(self) -> list[str]:
        """One line per value that is still a documentation placeholder, naming the file and key: synth and tests
        run with them, a deploy refuses them (the Makefile before `cdk deploy`, CloudFormation in every stack)."""
        shown = f"config/{self.environment}.yaml"
        found = []
        standby = self.dr.tier == "warm_standby"
        for key, arn, region in (("web.certificate_arn", self.web.certificate_arn, self.region),
                                 ("dr.certificate_arn", self.dr.certificate_arn if standby else None, self.dr.region)):
            if arn is not None and (arn.split(":")[4] == EXAMPLE_ACCOUNT or not arn.rsplit("/", 1)[-1].strip("0-")):
                found.append(f"{shown}: {key}: {arn} is a placeholder; set the ARN of your ACM "
                             f"certificate in {region} (or null for HTTP only)")
        failover = self.dr.failover if standby else None
        if failover is not None and _is_example_domain(failover.zone_name):
            found.append(f"{shown}: dr.failover.zone_name: {failover.zone_name} is a placeholder (a reserved "
                         "example domain); set your Route 53 public hosted zone's name and id")
        if failover is not None and (failover.hosted_zone_id.endswith("EXAMPLE")
                                     or not failover.hosted_zone_id.strip("Z0")):
            found.append(f"{shown}: dr.failover.hosted_zone_id: {failover.hosted_zone_id} is a placeholder; set "
                         "your Route 53 public hosted zone's id (aws route53 list-hosted-zones-by-name)")
        for index, url in enumerate(self.identity.web_callback_urls):
            if _is_example_domain(urlsplit(url).hostname or ""):
                found.append(f"{shown}: identity.web_callback_urls.{index}: {url} is a placeholder (a reserved "
                             f"example domain); set your web app's sign-in callback URL")
        return found

    def name(self, part: str) -> str:
        """Physical-name prefix shared by every stack of this environment, e.g. selfnest-dev-network."""
        return f"selfnest-{self.environment}-{part}"


def _is_example_domain(name: str) -> bool:
    host = name.lower().rstrip(".")
    return any(host == domain or host.endswith(f".{domain}") for domain in EXAMPLE_DOMAINS)


def subnet_cidrs(network: NetworkSettings) -> dict[str, list[str]]:
    """Allocate tier subnets the way CDK does (in tier order, each aligned to its size) and fail if they do not fit."""
    vpc = ipaddress.IPv4Network(network.vpc_cidr)
    next_free = int(vpc.network_address)
    allocation: dict[str, list[str]] = {}
    masks = network.subnet_masks.model_dump()
    for tier, prefix in masks.items():
        size = 2 ** (32 - prefix)
        allocation[tier] = []
        for _ in network.availability_zones:
            start = -(-next_free // size) * size  # round up to the subnet's own alignment
            if prefix < vpc.prefixlen or start + size > int(vpc.broadcast_address) + 1:
                wanted = ", ".join(f"{name}=/{mask}" for name, mask in masks.items())
                raise ValueError(
                    f"subnet_masks ({wanted}) x {len(network.availability_zones)} AZs do not fit in VPC "
                    f"{network.vpc_cidr}: use a larger VPC or smaller subnets (larger prefix numbers)"
                )
            allocation[tier].append(str(ipaddress.IPv4Network((start, prefix))))
            next_free = start + size
    return allocation


def available_environments(config_dir: Path = CONFIG_DIR) -> list[str]:
    return sorted(path.stem for path in config_dir.glob("*.yaml"))


def load_settings(environment: str, config_dir: Path = CONFIG_DIR, *, dr_tier: str | None = None) -> SelfnestSettings:
    """Read and validate config/<environment>.yaml; raise ConfigError with a one-line message on any mistake.

    `dr_tier` (from `make synth DR_TIER=...` / `cdk synth -c dr_tier=...`) replaces the file's `dr.tier` and is
    validated with it, so a bad tier or one the environment cannot support fails the same way a file mistake does.
    """
    path = config_dir / f"{environment}.yaml"
    shown = _display_path(path)
    if not re.fullmatch(r"[a-z][a-z0-9-]*", environment) or not path.is_file():
        known = ", ".join(available_environments(config_dir)) or "none"
        raise ConfigError(f"unknown environment {environment!r}: there is no {shown} (available: {known})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{shown}: not valid YAML{where}: {getattr(error, 'problem', error)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{shown}: must be a mapping of settings (got {type(raw).__name__})")
    if "environment" in raw:
        raise ConfigError(f"{shown}: environment: unknown key (the environment is the file name, {environment!r})")
    if dr_tier is not None:
        shown = f"{shown} with dr_tier={dr_tier}"
        dr = raw.get("dr")
        raw["dr"] = {**(dr if isinstance(dr, dict) else {}), "tier": dr_tier}
    try:
        return SelfnestSettings.model_validate({"environment": environment, **raw})
    except ValidationError as error:
        raise ConfigError("\n".join(_describe(shown, detail) for detail in error.errors())) from None


def _describe(shown: str, detail: ErrorDetails) -> str:
    key = ".".join(str(part) for part in detail["loc"] if part != "[key]") or "(top level)"
    kind = detail["type"]
    value = detail.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(detail["loc"][:-1])
        return f"{shown}: {key}: unknown key (allowed here: {', '.join(allowed)})"
    if kind == "missing":
        return f"{shown}: {key}: missing (required)"
    if kind in {"literal_error", "enum"}:
        expected = detail.get("ctx", {}).get("expected", "")
        return f"{shown}: {key}: {value!r} is not allowed (allowed: {expected})"
    if kind in {"greater_than_equal", "less_than_equal"}:
        ctx = detail.get("ctx", {})
        field = _field_info(detail["loc"])
        bounds = _bounds(field, ctx) if field is not None else str(ctx)
        return f"{shown}: {key}: {value!r} is out of range (allowed: {bounds})"
    if kind == "string_pattern_mismatch":
        return f"{shown}: {key}: {value!r} is not valid here ({_pattern_hint(detail['loc'])})"
    if kind.endswith("_type") or kind in {"int_from_float", "bool_parsing", "int_parsing"}:
        expected = kind.removesuffix("_type").replace("model", "mapping").replace("dict", "mapping")
        return f"{shown}: {key}: expected {expected}, got {type(value).__name__} {value!r}"
    message = detail["msg"].removeprefix("Value error, ")
    if detail["loc"] and detail["type"] == "value_error":
        return f"{shown}: {key}: {message}"
    return f"{shown}: {message}"


_PATTERN_HINTS = {
    "region": "an AWS region code such as eu-west-1",
    "engine_version": "a PostgreSQL version 14.x to 18.x such as 17.9",
    "instance_type": "an RDS instance type without the db. prefix, such as t4g.micro",
    "certificate_arn": "an ACM certificate ARN, arn:aws:acm:<region>:<account>:certificate/<id>, or null",
    "environment": "lowercase letters, digits and dashes",
    "web_callback_urls": "an https:// URL of your web app's sign-in callback",
    "mobile_callback_urls": "a URL with the app's scheme, such as selfnest://auth/callback",
    "alarm_email": "an email address such as ops@example.com",
    "email": "an email address such as ops@example.com",
    "from_address": "an email address such as no-reply@example.com",
    "reply_to": "an email address such as support@example.com",
    "verified_domain": "a domain name such as example.com",
    "ses_region": "an AWS region code such as eu-west-1",
    "hosted_zone_id": "a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ",
    "zone_name": "a domain name such as example.com",
    "record_name": "a domain name in the zone, such as api.example.com",
}


def _pattern_hint(loc: tuple[int | str, ...]) -> str:
    field = next((str(part) for part in reversed(loc) if isinstance(part, str)), "")
    return _PATTERN_HINTS.get(field, "see config/dev.yaml for the expected form")


def _field_info(loc: tuple[int | str, ...]) -> Any:
    model: Any = SelfnestSettings
    info = None
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return info
        info = fields[part]
        model = _model_in(info.annotation)
    return info


def _bounds(field: Any, ctx: dict[str, Any]) -> str:
    low, high = ctx.get("ge"), ctx.get("le")
    for meta in [*field.metadata, *_annotated_metadata(field.annotation)]:
        low = getattr(meta, "ge", None) if getattr(meta, "ge", None) is not None else low
        high = getattr(meta, "le", None) if getattr(meta, "le", None) is not None else high
    if low is not None and high is not None:
        return f"{low} to {high}"
    return f"at least {low}" if low is not None else f"at most {high}"


def _annotated_metadata(annotation: Any) -> list[Any]:
    """Constraints of `Annotated[int, Field(...)] | None`-style annotations (pydantic keeps them inside the union)."""
    found = list(getattr(annotation, "__metadata__", ()))
    for arg in typing.get_args(annotation):
        found.extend(getattr(arg, "__metadata__", ()))
    # Field(ge=..., le=...) inside Annotated keeps its constraints in its own metadata list.
    return [constraint for meta in found for constraint in (meta, *getattr(meta, "metadata", ()))]


def _model_in(annotation: Any) -> Any:
    """The settings model behind `Model` or `Model | None`."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return annotation


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    model: Any = SelfnestSettings
    for part in loc:
        model = _model_in(model.model_fields[part].annotation)
    return [name for name in model.model_fields if name != "environment"]


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
