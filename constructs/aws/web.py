"""The public web tier: an internet-facing ALB in front of a Fargate service, with access logs and an optional WAF."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_wafv2 as wafv2
from aws_cdk import custom_resources as cr

from constructs import Construct

from .encryption import EncryptedLogGroup, removal_policy
from .functions import BundledPythonFunction, FunctionShape
from .nag import GRANTS_POLICY, acknowledge, finding_form

HEALTH_CHECK_PATH = "/healthz"
MIGRATE_CONTAINER = "Migrate"
DEPLOY_HANDLERS = Path(__file__).resolve().parents[2] / "services" / "selfnest_deploy"


@dataclass(frozen=True, kw_only=True)
class ServiceShape:
    cpu: int
    memory_mib: int
    min_tasks: int
    max_tasks: int
    container_port: int
    log_retention_days: int
    environment: dict[str, str] = field(default_factory=dict)


class AccessLogBucket(Construct):
    """Bucket for load balancer access logs: private, TLS-only, SSE-S3 (the only encryption ELB can write to)."""

    def __init__(self, scope: Construct, id: str, *, retain_data: bool, expire_after_days: int) -> None:
        super().__init__(scope, id)
        self.bucket = s3.Bucket(
            self, "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(expire_after_days),
                                              noncurrent_version_expiration=cdk.Duration.days(1))],
            removal_policy=removal_policy(retain_data=retain_data),
            auto_delete_objects=not retain_data,
        )
        acknowledge(self.bucket, {
            "AwsSolutions-S1": "This bucket is the log destination; logging it into itself would loop and "
                               "CloudTrail data events are the audit trail for it.",
            "HIPAA.Security-S3BucketLoggingEnabled": "This bucket is the log destination; see AwsSolutions-S1.",
            "HIPAA.Security-S3DefaultEncryptionKMS": "ELB access logs can only be delivered to SSE-S3 buckets.",
            "HIPAA.Security-S3BucketReplicationEnabled": "Access logs are operational data with a short expiry; "
                                                         "they hold no health data and need no second region.",
        })


class LoadBalancedService(Construct):
    """A Fargate service (ARM64) built from a Dockerfile directory, behind a public Application Load Balancer.

    With a certificate the ALB serves HTTPS (TLS 1.2+) and redirects HTTP to it; without one it serves HTTP only,
    which is acceptable for a throwaway dev environment and flagged by the compliance gates otherwise.
    """

    def __init__(self, scope: Construct, id: str, *, vpc: ec2.IVpc, public_subnets: ec2.SubnetSelection,
                 app_subnets: ec2.SubnetSelection, load_balancer_security_group: ec2.ISecurityGroup,
                 app_security_group: ec2.ISecurityGroup, assign_public_ip: bool, image_directory: str,
                 shape: ServiceShape, logs_key: kms.IKey, access_logs: s3.IBucket,
                 certificate_arn: str | None, retain_data: bool) -> None:
        super().__init__(scope, id)
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self, "LoadBalancer", vpc=vpc, vpc_subnets=public_subnets, internet_facing=True,
            security_group=load_balancer_security_group, drop_invalid_header_fields=True,
            deletion_protection=retain_data,
        )
        self.load_balancer.log_access_logs(access_logs, prefix="alb")

        cluster = ecs.Cluster(self, "Cluster", vpc=vpc,
                              container_insights_v2=ecs.ContainerInsights.ENABLED)
        self.cluster = cluster
        self.image = ecs.ContainerImage.from_asset(image_directory, platform=ecr_assets.Platform.LINUX_ARM64)
        task = ecs.FargateTaskDefinition(
            self, "Task", cpu=shape.cpu, memory_limit_mib=shape.memory_mib,
            runtime_platform=ecs.RuntimePlatform(cpu_architecture=ecs.CpuArchitecture.ARM64,
                                                 operating_system_family=ecs.OperatingSystemFamily.LINUX),
        )
        self.task_role = task.task_role
        self.logs = EncryptedLogGroup(self, "Logs", key=logs_key, retention_days=shape.log_retention_days,
                                      retain_data=retain_data)
        self.container = task.add_container(
            "Api",
            # Staged into cdk.out at synth; built and pushed by `cdk deploy` on a machine with Docker.
            image=self.image,
            port_mappings=[ecs.PortMapping(container_port=shape.container_port)],
            environment={"PORT": str(shape.container_port), **shape.environment},
            logging=ecs.LogDrivers.aws_logs(stream_prefix="api", log_group=self.logs.log_group),
            readonly_root_filesystem=True,
            health_check=ecs.HealthCheck(
                command=["CMD", "python", "-c", "import urllib.request,os; urllib.request.urlopen("
                         f"'http://127.0.0.1:'+os.environ['PORT']+'{HEALTH_CHECK_PATH}', timeout=3)"],
            ),
        )
        self.service = ecs.FargateService(
            self, "Service", cluster=cluster, task_definition=task,
            desired_count=shape.min_tasks, vpc_subnets=app_subnets, security_groups=[app_security_group],
            assign_public_ip=assign_public_ip, circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            min_healthy_percent=100,
        )
        scaling = self.service.auto_scale_task_count(min_capacity=shape.min_tasks, max_capacity=shape.max_tasks)
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=60)
        if shape.min_tasks == 0:
            self._scale_from_zero(scaling)

        self.listener = self._listeners(certificate_arn)
        self.listener.add_targets(
            "Api", port=shape.container_port, protocol=elbv2.ApplicationProtocol.HTTP, targets=[self.service],
            health_check=elbv2.HealthCheck(path=HEALTH_CHECK_PATH, healthy_http_codes="200"),
            deregistration_delay=cdk.Duration.seconds(30),
        )

        acknowledge(task, {
            "AwsSolutions-ECS2": "Only non-secret settings (port, endpoints, ARNs) are environment variables; "
                                 "credentials are read from Secrets Manager at run time.",
        })
        if not retain_data:
            acknowledge(self.load_balancer, {
                "HIPAA.Security-ELBDeletionProtectionEnabled": "dev must be destroyable by `cdk destroy`; prod "
                                                               "enables deletion protection.",
            })
        acknowledge(task, GRANTS_POLICY)
        acknowledge(task.obtain_execution_role(), {
            "AwsSolutions-IAM5[Resource::*]": "ecr:GetAuthorizationToken has no resource-level permissions; "
                                              "image pulls themselves are scoped to the asset repository.",
        })
        if certificate_arn is None:
            reason = "No certificate is configured (dev without a domain); set web.certificate_arn to serve HTTPS."
            acknowledge(self, {"HIPAA.Security-ALBHttpToHttpsRedirection": reason,
                               "HIPAA.Security-ELBv2ACMCertificateRequired": reason})

    def _scale_from_zero(self, scaling: ecs.ScalableTaskCount) -> None:
        """No task while idle: the balancer answers a request with 503 (no registered target), which starts one
        (about two minutes to healthy); fifteen minutes without a request routed to it stop it again. CPU target
        tracking cannot do either: a service with no task reports no CPU. RequestCount counts only requests the
        balancer routed to a target, hence the 503s to wake and RequestCount to sleep."""
        def balancer_metric(metric_name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(namespace="AWS/ApplicationELB", metric_name=metric_name, statistic="Sum",
                                     period=cdk.Duration.minutes(1),
                                     dimensions_map={"LoadBalancer": self.load_balancer.load_balancer_full_name})

        # Step intervals whose change is 0 get no alarm: each policy below makes exactly one ($0.10 a month).
        scaling.scale_on_metric(
            "WakeOnRequest", metric=balancer_metric("HTTPCode_ELB_503_Count"), evaluation_periods=1,
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            scaling_steps=[appscaling.ScalingInterval(upper=0, change=0),
                           appscaling.ScalingInterval(lower=1, change=+1)])
        scaling.scale_on_metric(
            "SleepWhenIdle", metric=balancer_metric("RequestCount"), evaluation_periods=15, datapoints_to_alarm=15,
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            scaling_steps=[appscaling.ScalingInterval(upper=0, change=-1),
                           appscaling.ScalingInterval(lower=1, change=0)])
        # The balancer publishes no metric in a minute without requests: missing data is idleness (no 503s to wake
        # on; no requests, so sleep).
        policies = {node.node.id: node for node in self.service.node.find_all()
                    if isinstance(node, appscaling.StepScalingPolicy)}
        for policy_id, alarm, missing in (("WakeOnRequest", policies["WakeOnRequest"].upper_alarm, "notBreaching"),
                                          ("SleepWhenIdle", policies["SleepWhenIdle"].lower_alarm, "breaching")):
            assert alarm is not None, policy_id
            resource = alarm.node.default_child
            assert isinstance(resource, cloudwatch.CfnAlarm)
            resource.treat_missing_data = missing
            resource.alarm_description = {
                "WakeOnRequest": "The API has no task and the load balancer answered 503: start one.",
                "SleepWhenIdle": "No request reached the API for 15 minutes: stop a task (down to none)."}[policy_id]

    def _listeners(self, certificate_arn: str | None) -> elbv2.ApplicationListener:
        if certificate_arn is None:
            return self.load_balancer.add_listener("Http", port=80, open=True)
        redirect = self.load_balancer.add_redirect(source_port=80, target_port=443)
        acknowledge(redirect, {
            "HIPAA.Security-ELBv2ACMCertificateRequired": "Port 80 only answers with a redirect to HTTPS (443, "
                                                          "ACM certificate); it serves no content.",
        })
        certificate = acm.Certificate.from_certificate_arn(self, "Certificate", certificate_arn)
        return self.load_balancer.add_listener(
            "Https", port=443, open=True, certificates=[certificate],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
        )


class MigrationTask(Construct):
    """The one-off schema migration: the API's image running `python -m selfnest_api migrate` under its own task
    role — the only one that may read the master secret — never as part of the internet-facing service."""

    def __init__(self, scope: Construct, id: str, *, image: ecs.ContainerImage, cpu: int, memory_mib: int,
                 environment: dict[str, str], log_group: EncryptedLogGroup) -> None:
        super().__init__(scope, id)
        self.task = ecs.FargateTaskDefinition(
            self, "Task", cpu=cpu, memory_limit_mib=memory_mib,
            runtime_platform=ecs.RuntimePlatform(cpu_architecture=ecs.CpuArchitecture.ARM64,
                                                 operating_system_family=ecs.OperatingSystemFamily.LINUX))
        self.container = self.task.add_container(
            MIGRATE_CONTAINER, image=image, command=["python", "-m", "selfnest_api", "migrate"],
            environment=environment,
            logging=ecs.LogDrivers.aws_logs(stream_prefix="migrate", log_group=log_group.log_group),
            readonly_root_filesystem=True, essential=True)
        self.task_role = self.task.task_role
        self.execution_role = self.task.obtain_execution_role()
        acknowledge(self.task, {
            "AwsSolutions-ECS2": "Only non-secret settings (endpoints, secret ARNs) are environment variables; "
                                 "credentials are read from Secrets Manager at run time.",
            **GRANTS_POLICY,
        })
        acknowledge(self.task.obtain_execution_role(), {
            "AwsSolutions-IAM5[Resource::*]": "ecr:GetAuthorizationToken has no resource-level permissions; "
                                              "image pulls themselves are scoped to the asset repository.",
        })


class MigrationOnDeploy(Construct):
    """Runs `migration` on Fargate while the stack deploys and fails the deploy unless it exits 0.

    A Provider-framework custom resource whose properties name the migrate task definition revision, so every new
    revision (new image, new migrations) runs again on update; delete does nothing. Anything that must not start
    before the schema is current — the API service, whose login the migration creates — depends on this construct.
    """

    QUERY_INTERVAL = cdk.Duration.seconds(15)
    # Fargate provisioning and the image pull take minutes; the framework allows one hour at most.
    TOTAL_TIMEOUT = cdk.Duration.minutes(30)

    def __init__(self, scope: Construct, id: str, *, migration: MigrationTask, cluster: ecs.ICluster,
                 vpc: ec2.IVpc, subnets: ec2.SubnetSelection, security_group: ec2.ISecurityGroup,
                 assign_public_ip: bool, logs_key: kms.IKey, log_retention_days: int, retain_data: bool) -> None:
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        handlers = {
            name: BundledPythonFunction(
                self, name, source=DEPLOY_HANDLERS, logs_key=logs_key, retain_data=retain_data,
                shape=FunctionShape(handler=f"run_migration.{handler}", description=description,
                                    timeout_seconds=60, log_retention_days=log_retention_days))
            for name, handler, description in (
                ("Start", "on_event", "Starts the schema migration task on deploy"),
                ("Wait", "is_complete", "Reports whether the schema migration task finished and succeeded"))}
        family_revisions = stack.format_arn(service="ecs", resource="task-definition",
                                            resource_name=f"{migration.task.family}:*")
        handlers["Start"].role.add_to_principal_policy(iam.PolicyStatement(
            actions=["ecs:RunTask"], resources=[family_revisions],
            conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}}))
        handlers["Start"].role.add_to_principal_policy(iam.PolicyStatement(
            actions=["iam:PassRole"], resources=[migration.task_role.role_arn, migration.execution_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}))
        cluster_tasks = stack.format_arn(service="ecs", resource="task",
                                         resource_name=f"{cluster.cluster_name}/*")
        handlers["Wait"].role.add_to_principal_policy(iam.PolicyStatement(
            actions=["ecs:DescribeTasks"], resources=[cluster_tasks],
            conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}}))
        framework_logs = EncryptedLogGroup(self, "ProviderLogs", key=logs_key, retention_days=log_retention_days,
                                           retain_data=retain_data)
        self.provider = cr.Provider(
            self, "Provider", on_event_handler=handlers["Start"].function,
            is_complete_handler=handlers["Wait"].function, query_interval=self.QUERY_INTERVAL,
            total_timeout=self.TOTAL_TIMEOUT, provider_function_env_encryption=logs_key,
            log_group=framework_logs.log_group)
        self.resource = cdk.CustomResource(
            self, "Resource", service_token=self.provider.service_token, resource_type="Custom::SchemaMigration",
            properties={
                "Cluster": cluster.cluster_arn,
                "TaskDefinition": migration.task.task_definition_arn,
                "ContainerName": migration.container.container_name,
                # The selection's own fields, as the service resolves it (a jsii struct cannot be unpacked).
                "Subnets": vpc.select_subnets(**subnets._values).subnet_ids,
                "SecurityGroups": [security_group.security_group_id],
                "AssignPublicIp": "ENABLED" if assign_public_ip else "DISABLED",
            })
        # The task reads its secrets under its roles' policies: they must exist before it starts.
        self.resource.node.add_dependency(migration)
        acknowledge(handlers["Start"], {
            f"AwsSolutions-IAM5[Resource::{finding_form(stack, family_revisions)}]":
                "RunTask names the migrate task definition's family (any revision: each deploy registers a new one) "
                "and only on this cluster (ecs:cluster condition).",
        })
        acknowledge(handlers["Wait"], {
            f"AwsSolutions-IAM5[Resource::{finding_form(stack, cluster_tasks)}]":
                "Task ids are random; DescribeTasks is limited to the tasks of this cluster.",
        })
        # The framework may invoke any version of the functions it calls (ARN:*): ours and its own.
        invoked = [handler.function for handler in handlers.values()] + [
            child for name in ("framework-isComplete", "framework-onTimeout")
            if isinstance(child := self.provider.node.find_child(name), lambda_.Function)]
        acknowledge(self.provider, {
            **PROVIDER_FRAMEWORK_FINDINGS,
            **{f"AwsSolutions-IAM5[Resource::{finding_form(stack, f'{function.function_arn}:*')}]":
               "The Provider framework invokes the versions of its own and our two handler functions (ARN:*), "
               "nothing else." for function in invoked},
        })


# What cdk-nag reports on the CDK Provider framework's own parts (its Node.js functions and waiter state machine),
# which this project does not write; each is answered for the migration resource that uses it.
PROVIDER_FRAMEWORK_FINDINGS = {
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]":
        "The framework's functions use the AWS managed basic execution role: it only writes their own logs.",
    "AwsSolutions-SF1": "The waiter state machine only retries the is_complete handler, whose own log group "
                        "records every poll and the task's outcome.",
    "AwsSolutions-SF2": "The waiter state machine only retries the is_complete handler; X-Ray adds nothing there.",
    "HIPAA.Security-LambdaDLQ": "Only a deploy invokes these functions (CloudFormation, then the waiter state "
                                "machine); an event that fails fails or times out that deploy, where it is seen "
                                "and re-run; a queue of dead deploy events would hold nothing to redrive.",
    "HIPAA.Security-LambdaConcurrency": "Reserved concurrency would fail to deploy in new accounts (limit 10); "
                                        "one deploy at a time invokes these functions.",
    "HIPAA.Security-LambdaInsideVPC": "The framework only calls the Lambda and Step Functions APIs and "
                                      "CloudFormation's response URL.",
    **GRANTS_POLICY,
}


class RegionalWebFirewall(Construct):
    """AWS WAF for a regional resource: AWS managed rule groups plus a per-IP rate limit."""

    MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
                           "AWSManagedRulesAmazonIpReputationList", "AWSManagedRulesSQLiRuleSet")

    def __init__(self, scope: Construct, id: str, *, resource_arn: str, requests_per_5_minutes_per_ip: int,
                 metric_prefix: str, logs_key: kms.IKey, log_retention_days: int, retain_data: bool) -> None:
        super().__init__(scope, id)
        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name=group, priority=priority,
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=group)),
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                visibility_config=_visibility(f"{metric_prefix}-{group}"),
            )
            for priority, group in enumerate(self.MANAGED_RULE_GROUPS)
        ]
        rules.append(wafv2.CfnWebACL.RuleProperty(
            name="RateLimitPerIp", priority=len(rules),
            statement=wafv2.CfnWebACL.StatementProperty(rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                limit=requests_per_5_minutes_per_ip, aggregate_key_type="IP")),
            action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            visibility_config=_visibility(f"{metric_prefix}-rate-limit"),
        ))
        self.web_acl = wafv2.CfnWebACL(
            self, "WebAcl", scope="REGIONAL", default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            rules=rules, visibility_config=_visibility(metric_prefix),
        )
        wafv2.CfnWebACLAssociation(self, "Association", resource_arn=resource_arn,
                                   web_acl_arn=self.web_acl.attr_arn)

        log_group_name = f"aws-waf-logs-{metric_prefix}"  # WAF only delivers to groups with this prefix
        logs = EncryptedLogGroup(self, "Logs", key=logs_key, retention_days=log_retention_days,
                                 retain_data=retain_data, name=log_group_name)
        logging = wafv2.CfnLoggingConfiguration(
            self, "Logging", resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[cdk.Stack.of(self).format_arn(
                service="logs", resource="log-group", resource_name=log_group_name,
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)],
            # Bearer tokens identify (possibly anonymous) clients: never write them to logs.
            redacted_fields=[wafv2.CfnLoggingConfiguration.FieldToMatchProperty(
                single_header={"Name": "authorization"})],
        )
        logging.node.add_dependency(logs)


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric_name, sampled_requests_enabled=True)
