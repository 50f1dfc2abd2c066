"""PostgreSQL in the isolated data subnets, encrypted with a customer-managed key, credentials rotated.

The API signs in with IAM database authentication (a token per connection, no password); the master password is
managed and rotated by RDS itself unless the database has a read replica (see `rds_manages_master_password`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sam as sam
from aws_cdk import aws_secretsmanager as secretsmanager

from constructs import Construct

from .encryption import EncryptedLogGroup
from .nag import acknowledge
from .network import POSTGRES_PORT

# The API's database user: signs in with IAM tokens (rds-db:connect). A name of its own, not the password-era
# `selfnest_api` (services/selfnest_api/selfnest_api/migrations.py PRE_IAM_LOGINS): during a rolling deploy the
# previous version's tasks keep signing in with that one's password until ECS replaces them, and the migrate task
# retires it once nobody is signed in as it.
APPLICATION_LOGIN = "selfnest_api_iam"
MASTER_USERNAME = "selfnest_admin"
DEFAULT_PORT = {
    "AwsSolutions-RDS11": "5432 is kept on purpose: a non-default port hides nothing from a scan, while the "
                          "security groups (and, in the primary VPC, the data-subnet NACL) admit only known clients.",
}
ENHANCED_MONITORING_ROLE = {
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole]":
        "The AWS-maintained policy for the RDS enhanced-monitoring service role: it only writes RDS OS metrics to "
        "CloudWatch Logs.",
}


def _known_postgres_versions() -> dict[str, rds.PostgresEngineVersion]:
    constants = (getattr(rds.PostgresEngineVersion, name) for name in dir(rds.PostgresEngineVersion)
                 if name.startswith("VER_"))
    return {constant.postgres_full_version: constant for constant in constants
            if "." in constant.postgres_full_version}


# Every PostgreSQL minor version this aws-cdk-lib names (PostgresEngineVersion.VER_17_9 -> "17.9"): versions RDS
# offered when the library was released, so a typo or an invented version never reaches CloudFormation.
POSTGRES_VERSIONS: dict[str, rds.PostgresEngineVersion] = _known_postgres_versions()


def postgres_engine(version: str) -> rds.IInstanceEngine:
    """PostgreSQL at `version`, one of POSTGRES_VERSIONS (config validates it)."""
    return rds.DatabaseInstanceEngine.postgres(version=POSTGRES_VERSIONS[version])


def tls_only_parameters(scope: Construct, id: str, *, engine: rds.IInstanceEngine) -> rds.ParameterGroup:
    """Parameters every Selfnest PostgreSQL (primary or replica) runs with."""
    return rds.ParameterGroup(
        scope, id, engine=engine,
        description="TLS-only connections, connection and slow-statement logging",
        parameters={
            "rds.force_ssl": "1",
            "log_connections": "1",
            "log_disconnections": "1",
            "log_min_duration_statement": "1000",
        },
    )


EXPORTED_LOGS = ("postgresql", "upgrade")


def exported_log_groups(scope: Construct, *, instance_identifier: str, key: kms.IKey, retention_days: int,
                        retain_data: bool) -> list[EncryptedLogGroup]:
    """The groups RDS exports PostgreSQL logs to, created up front (hence the fixed identifier) so they are
    KMS-encrypted and expire, without CDK's log-retention Lambda."""
    return [EncryptedLogGroup(scope, f"{kind.capitalize()}Logs", key=key, retention_days=retention_days,
                              retain_data=retain_data, name=f"/aws/rds/instance/{instance_identifier}/{kind}")
            for kind in EXPORTED_LOGS]


def rds_manages_master_password(*, credentials_replica_regions: Sequence[str]) -> bool:
    """Whether RDS manages (generates, stores and rotates) the master password in Secrets Manager.

    RDS refuses to create a read replica of an instance whose master password it manages ("Limitations for Secrets
    Manager integration with Amazon RDS", https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-secrets-manager.html),
    so where a DR tier keeps a cross-region replica (`credentials_replica_regions`: the regions that need the
    credentials of a promoted replica) the secret stays ours: generated, replicated there and rotated by a function
    in the VPC, which needs the Secrets Manager endpoint. The one rule both the network (endpoint or not) and the
    database follow.
    """
    return not credentials_replica_regions


@dataclass(frozen=True, kw_only=True)
class DatabaseShape:
    engine_version: str
    instance_type: str
    allocated_storage_gib: int
    max_allocated_storage_gib: int
    multi_az: bool
    deletion_protection: bool
    backup_retention_days: int
    secret_rotation_days: int
    log_retention_days: int


class PrivateDatabase(Construct):
    """PostgreSQL reachable only from the `clients` security group, placed in `subnets`.

    `retain_data` decides what deleting the stack does: take a final snapshot (prod) or remove everything (dev).
    `secrets_endpoint` (the VPC's Secrets Manager endpoint) is needed only when the master secret is rotated by a
    function in the VPC, i.e. when `rds_manages_master_password` is false for `credentials_replica_regions`.
    """

    def __init__(self, scope: Construct, id: str, *, vpc: ec2.IVpc, subnets: ec2.SubnetSelection,
                 security_group: ec2.ISecurityGroup, clients: ec2.ISecurityGroup,
                 rotation_subnets: ec2.SubnetSelection, secrets_endpoint: ec2.IInterfaceVpcEndpoint | None,
                 key: kms.IKey, shape: DatabaseShape, retain_data: bool, instance_identifier: str,
                 database_name: str, credentials_replica_regions: Sequence[str] = ()) -> None:
        super().__init__(scope, id)
        exported_logs = list(EXPORTED_LOGS)
        log_groups = exported_log_groups(self, instance_identifier=instance_identifier, key=key,
                                         retention_days=shape.log_retention_days, retain_data=retain_data)
        engine = postgres_engine(shape.engine_version)
        parameters = tls_only_parameters(self, "Parameters", engine=engine)
        self.master_password_managed_by_rds = rds_manages_master_password(
            credentials_replica_regions=credentials_replica_regions)
        if not self.master_password_managed_by_rds and secrets_endpoint is None:
            raise ValueError("a database with a cross-region replica rotates its master secret from the VPC: it needs "
                             "the VPC's Secrets Manager endpoint (secrets_endpoint)")
        self.instance = rds.DatabaseInstance(
            self, "Instance",
            engine=engine,
            instance_type=ec2.InstanceType(shape.instance_type),
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[security_group],
            port=POSTGRES_PORT,
            instance_identifier=instance_identifier,
            database_name=database_name,
            # RDS-managed: RDS generates the password, keeps it in a secret encrypted with `key` and rotates it
            # itself (no function, no endpoint). Otherwise a replica of our generated secret in each DR region keeps
            # the credentials of a promoted read replica (the same master password) reachable when this region is
            # gone; it is encrypted there with that region's Secrets Manager key, because this key is regional.
            credentials=rds.Credentials.from_username(MASTER_USERNAME, encryption_key=key)
            if self.master_password_managed_by_rds else rds.Credentials.from_generated_secret(
                MASTER_USERNAME, encryption_key=key,
                replica_regions=[secretsmanager.ReplicaRegion(region=region)
                                 for region in credentials_replica_regions]),
            manage_master_user_password=True if self.master_password_managed_by_rds else None,
            storage_encrypted=True,
            storage_encryption_key=key,
            allocated_storage=shape.allocated_storage_gib,
            max_allocated_storage=shape.max_allocated_storage_gib,
            storage_type=rds.StorageType.GP3,
            multi_az=shape.multi_az,
            deletion_protection=shape.deletion_protection,
            publicly_accessible=False,
            iam_authentication=True,
            parameter_group=parameters,
            backup_retention=cdk.Duration.days(shape.backup_retention_days),
            delete_automated_backups=not retain_data,
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            monitoring_interval=cdk.Duration.seconds(60),
            enable_performance_insights=True,
            performance_insight_encryption_key=key,
            cloudwatch_logs_exports=exported_logs,
            removal_policy=cdk.RemovalPolicy.SNAPSHOT if retain_data else cdk.RemovalPolicy.DESTROY,
        )
        for log_group in log_groups:
            self.instance.node.add_dependency(log_group)
        assert self.instance.secret is not None  # RDS-managed or generated above
        self.secret = self.instance.secret   # the master credentials: only the migrate task reads them
        generated = self.instance.node.try_find_child("Secret")
        if isinstance(generated, secretsmanager.Secret):
            # Kept where data is kept: snapshots and backup copies taken while it was in use restore with its
            # password, also after a tier change hands the master password to RDS (which sets a new one).
            generated.apply_removal_policy(cdk.RemovalPolicy.RETAIN if retain_data else cdk.RemovalPolicy.DESTROY)
        # RDS's own `connections` use a token for the port, which would make the security group (network stack)
        # reference the instance (this stack) and form a cycle; this view of the same group uses the literal port.
        self.connections = ec2.Connections(security_groups=[security_group],
                                           default_port=ec2.Port.tcp(POSTGRES_PORT))
        self.connections.allow_default_port_from(clients)
        self.rotation: secretsmanager.SecretRotation | None = None
        self.rotation_logs: EncryptedLogGroup | None = None
        if secrets_endpoint is not None and not self.master_password_managed_by_rds:
            secrets_endpoint.connections.allow_default_port_from(clients)
            # The rotation function runs in the app tier with the app security group, so the database still admits
            # exactly one source. It calls the standard Secrets Manager endpoint, which the VPC endpoint's private
            # DNS answers inside the VPC (no NAT needed in dev); naming the endpoint's own DNS name would bypass that.
            self.rotation = secretsmanager.SecretRotation(
                self, "Rotation",
                application=secretsmanager.SecretRotationApplication.POSTGRES_ROTATION_SINGLE_USER,
                secret=self.secret,
                target=self.connections,
                vpc=vpc,
                vpc_subnets=rotation_subnets,
                security_group=clients,
                automatically_after=cdk.Duration.days(shape.secret_rotation_days),
            )
            self.rotation_logs = self._rotation_log_group("RotationLogs", self.rotation, key=key, shape=shape,
                                                          retain_data=retain_data)
        # The API's own login (owner of nothing, DML on its tables: migrations/0002_application_role.sql) has no
        # password at all: it signs in with IAM database authentication, a 15-minute token its task role signs per
        # connection (grant_connect). The migrate task creates it and grants it rds_iam.
        self.application_login = APPLICATION_LOGIN
        self.key = key
        self.endpoint = self.instance.instance_endpoint
        self.port = POSTGRES_PORT
        self.database_name = database_name

        acknowledge(self.instance, {**DEFAULT_PORT, **ENHANCED_MONITORING_ROLE})
        if not shape.multi_az:
            acknowledge(self.instance, {
                "AwsSolutions-RDS3": "Single-AZ is the dev shape chosen in config (cost); prod is Multi-AZ.",
                "HIPAA.Security-RDSMultiAZSupport": "Single-AZ is the dev shape chosen in config (cost); "
                                                    "prod is Multi-AZ.",
            })
        if not shape.deletion_protection:
            reason = "dev must be destroyable by `cdk destroy`; prod enables deletion protection."
            acknowledge(self.instance, {"AwsSolutions-RDS10": reason,
                                        "HIPAA.Security-RDSInstanceDeletionProtectionEnabled": reason})

    def _rotation_log_group(self, id: str, rotation: secretsmanager.SecretRotation, *, key: kms.IKey,
                            shape: DatabaseShape, retain_data: bool) -> EncryptedLogGroup:
        """The rotation function's default log group, created first, encrypted and expiring.

        The function lives in a Serverless Application Repository stack that makes no log group, so without this one
        its logs would be plaintext and left behind on delete.
        """
        application = rotation.node.default_child
        assert isinstance(application, sam.CfnApplication)
        rotation_parameters = application.parameters
        assert isinstance(rotation_parameters, Mapping)
        log_group = EncryptedLogGroup(
            self, id, key=key, retention_days=shape.log_retention_days, retain_data=retain_data,
            name=f"/aws/lambda/{rotation_parameters['functionName']}")
        application.node.add_dependency(log_group)
        return log_group

    def grant_connect(self, grantee: iam.IGrantable) -> None:
        """Let `grantee` sign in as the API's login with IAM database authentication: rds-db:connect on exactly
        arn:<partition>:rds-db:<region>:<account>:dbuser:<DbiResourceId>/<login>, nothing else."""
        grant_connect_as_application(self.instance, grantee)

    def grant_read_credentials(self, grantee: iam.IGrantable, *, secret: secretsmanager.ISecret) -> None:
        """Let `grantee` read `secret` (the master's), decrypting only through Secrets Manager.

        Written into the grantee's own policy: the key policy already delegates to IAM in this account, and naming
        a role from another stack in it would make this stack depend on that one.
        """
        stack = cdk.Stack.of(self)
        grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            resources=[secret.secret_arn],
        ))
        grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
            actions=["kms:Decrypt"],
            resources=[self.key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{stack.region}.amazonaws.com"}},
        ))


def grant_connect_as_application(instance: rds.DatabaseInstanceBase, grantee: iam.IGrantable) -> None:
    """rds-db:connect for APPLICATION_LOGIN on `instance` (a primary or a read replica with IAM authentication)."""
    instance.grant_connect(grantee, APPLICATION_LOGIN)
