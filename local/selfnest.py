"""Selfnest on this machine: MiniStack on 127.0.0.1, the real CDK CLI deploying the synthesized stacks into it, and
the booking API as a local process configured from what was deployed.

MiniStack itself runs the Lambda functions from their deployed assets: the Cognito triggers on sign-up, confirmation
and token issue, the SQS event source mappings (batch size, ReportBatchItemFailures, redrive), and the WebSocket
API's routes with the authorizer on $connect. Nothing here plays those parts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import boto3

from . import babybloom
from .assembly import Omission, localize
from .postgres import LocalPostgres
from .processes import LocalError, Registry, free_port, port_is_free, wait_for

ROOT = Path(__file__).resolve().parents[1]
CDK = ROOT / "node_modules" / ".bin" / "cdk"
EMULATOR_PYTHON = ROOT / ".venv-emulator" / "bin" / "python"
ACCOUNT = "000000000000"   # MiniStack's default account
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
_Found = TypeVar("_Found")


@dataclass(frozen=True, kw_only=True)
class Endpoints:
    """What `make up` prints and `make demo` reads (.local/endpoints.json)."""

    environment: str
    region: str
    emulator: str
    api: str
    chat: str
    user_pool_id: str
    mobile_client_id: str
    session_events_topic_arn: str
    not_emulated: list[str]

    def save(self, state: Path) -> None:
        (state / "endpoints.json").write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, state: Path) -> Endpoints:
        path = state / "endpoints.json"
        if not path.is_file():
            raise LocalError("nothing is running here: `make up` first")
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def aws_environment(endpoint: str, region: str) -> dict[str, str]:
    """This process's environment without any AWS setting of the user's (profile, keys, endpoints), plus the
    emulator's: nothing started from here can reach a real account."""
    own = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "CDK_DEFAULT_"))}
    return {**own, **CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": region, "AWS_DEFAULT_REGION": region}


def start_emulator(registry: Registry, *, port: int, region: str) -> str:
    """MiniStack on 127.0.0.1:`port`; returns its endpoint as the CDK CLI needs it (localhost, see docs/local.md)."""
    if not port_is_free(port):
        raise LocalError(f"port {port} on 127.0.0.1 is in use: stop what holds it or pick another with "
                         "`make up LOCAL_PORT=...`")
    if not EMULATOR_PYTHON.is_file():
        raise LocalError(f"the emulator's environment is missing ({EMULATOR_PYTHON}): run `make up`, which creates it")
    # Its Lambda workers run our handlers with this interpreter (local/emulator-requirements.lock).
    process = registry.spawn("ministack", [str(EMULATOR_PYTHON), "-m", "ministack"], env={
        # AUTH=true: requests are checked against the caller's identity policies; each Lambda function runs under
        # a session of its own execution role, the API under its task role (role_credentials).
        **os.environ, "GATEWAY_PORT": str(port), "BIND_HOST": "127.0.0.1", "LOG_LEVEL": "WARNING", "AUTH": "true",
        "STATE_DIR": str(registry.state / "ministack"), "MINISTACK_REGION": region})
    endpoint = f"http://localhost:{port}"
    wait_for(lambda: urllib.request.urlopen(f"{endpoint}/_ministack/health", timeout=2).status == 200,  # noqa: S310
             what="MiniStack", seconds=60, log=process.log)
    return endpoint


def synthesize(environment: str, outdir: Path) -> None:
    """`make synth`'s CDK app, into `outdir` (never into cdk.out: what deploys to AWS stays as synthesized)."""
    from refarch.tools.synth import synthesize as cdk_synth

    # Environment-agnostic, as `make synth`: never the account of whatever credentials the user has.
    for name in [name for name in os.environ if name.startswith(("AWS_", "CDK_DEFAULT_"))]:
        del os.environ[name]
    finished = cdk_synth(environment, outdir)
    if finished.returncode != 0:
        raise LocalError(f"cdk synth -c env={environment} failed (see the output above)")


def deploy(assembly: Path, *, endpoint: str, region: str, log: Path) -> None:
    """The real CDK CLI: bootstrap the emulator's account, then deploy every stack of the local assembly."""
    env = {**aws_environment(endpoint, region), "PATH": f"{CDK.parent}{os.pathsep}{os.environ['PATH']}",
           "CDK_DISABLE_VERSION_CHECK": "1"}
    for command in ([str(CDK), "bootstrap", f"aws://{ACCOUNT}/{region}", "--app", str(assembly)],
                    [str(CDK), "deploy", "--all", "--app", str(assembly), "--require-approval", "never",
                     "--concurrency", "3", "--progress", "events"]):
        with log.open("a") as output:
            finished = subprocess.run(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                                      check=False)
        if finished.returncode != 0:
            raise LocalError(f"`cdk {command[1]}` into the emulator failed; see {log}")


@dataclass(frozen=True, kw_only=True)
class TaskDefinition:
    """One deployed ECS task definition's single container: what ECS would run, and under which role."""

    family: str
    command: list[str]
    environment: dict[str, str]
    task_role_arn: str

    @property
    def is_migration(self) -> bool:
        return self.command[-1:] == ["migrate"]


def web_task_definitions(*, endpoint: str, region: str) -> tuple[TaskDefinition, TaskDefinition]:
    """The web stack's two task definitions: the API service's and the one-off migrate task's (its command ends in
    `migrate`, services/selfnest_api/__main__.py)."""
    ecs = aws_client("ecs", endpoint=endpoint, region=region)
    found = []
    for arn in ecs.list_task_definitions()["taskDefinitionArns"]:
        if "selfnest" not in arn or "web" not in arn:
            continue
        task = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        [container] = task["containerDefinitions"]
        found.append(TaskDefinition(
            family=task["family"], command=container.get("command") or ["python", "-m", "selfnest_api"],
            environment={item["name"]: item["value"] for item in container.get("environment", [])},
            task_role_arn=task["taskRoleArn"]))
    api = _only([task for task in found if not task.is_migration], "the API service's task definition")
    migration = _only([task for task in found if task.is_migration], "the migrate task definition")
    return api, migration


def start_api(registry: Registry, *, environment: str, endpoint: str, region: str, database: LocalPostgres) -> str:
    """The booking API as a local process. First the one-off migrate task, as ECS runs it before the service: its
    task definition's command, environment and role, signing in with the master secret; then the API with its own
    task definition's environment and role, signing in with its own (least-privilege) secret."""
    api_task, migration_task = web_task_definitions(endpoint=endpoint, region=region)
    secrets = aws_client("secretsmanager", endpoint=endpoint, region=region)
    master = json.loads(secrets.get_secret_value(SecretId=migration_task.environment["DB_SECRET_ARN"])["SecretString"])
    database.ensure_master_login(username=master["username"], password=master["password"],
                                 dbname=migration_task.environment.get("DB_NAME") or master["dbname"])
    migrate_log = registry.state / "logs" / "selfnest-migrate.log"
    migrate_log.parent.mkdir(parents=True, exist_ok=True)
    with migrate_log.open("ab") as output:
        finished = subprocess.run([sys.executable, *migration_task.command[1:]], cwd=ROOT, stdout=output,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False, timeout=300,
                                  env=_task_environment(migration_task, database=database, endpoint=endpoint,
                                                        region=region, session="selfnest-migrate"))
    if finished.returncode != 0:
        last = migrate_log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise LocalError(f"the migrate task failed (exit {finished.returncode}): {last[0]} (log: {migrate_log})")
    port = free_port()
    api_environment = {**_task_environment(api_task, database=database, endpoint=endpoint, region=region,
                                           session="selfnest-api"), "PORT": str(port)}
    process = registry.spawn("selfnest-api", [sys.executable, *api_task.command[1:]], env=api_environment)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: urllib.request.urlopen(f"{url}/readyz", timeout=2).status == 200,  # noqa: S310
             what="the booking API", seconds=60, log=process.log)
    return url


def _task_environment(task: TaskDefinition, *, database: LocalPostgres, endpoint: str, region: str,
                      session: str) -> dict[str, str]:
    """A task definition's environment as its container gets it, under its task role's credentials, plus what DNS,
    the image and TLS give the container on AWS: the RDS endpoint's name resolves to the local cluster, whose
    certificate a local CA signed (verify-full, as against RDS), and the pool's keys come from the emulator."""
    pool_id = task.environment["USER_POOL_ID"]
    return {
        **aws_environment(endpoint, region), **task.environment,
        **role_credentials(task.task_role_arn, session=session, endpoint=endpoint, region=region),
        **database.client_tls(),
        "COGNITO_JWKS_URL": f"{endpoint}/{pool_id}/.well-known/jwks.json",
        "PYTHONPATH": str(ROOT / "services" / "selfnest_api"), "PYTHONUNBUFFERED": "1",
    }


def role_credentials(role_arn: str, *, session: str, endpoint: str, region: str) -> dict[str, str]:
    """Temporary credentials of a deployed role (what ECS hands a task), so the emulator's IAM checks apply to it.

    They last the role's maximum session (one hour by default): `make down && make up` after that."""
    assumed = aws_client("sts", endpoint=endpoint, region=region).assume_role(RoleArn=role_arn,
                                                                             RoleSessionName=session)
    credentials = assumed["Credentials"]
    return {"AWS_ACCESS_KEY_ID": credentials["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"]}


def describe(*, environment: str, endpoint: str, region: str, api: str,
             omissions: list[Omission]) -> Endpoints:
    cognito = aws_client("cognito-idp", endpoint=endpoint, region=region)
    pool_id = _only([pool["Id"] for pool in cognito.list_user_pools(MaxResults=60)["UserPools"]
                     if pool["Name"].startswith(f"selfnest-{environment}")], "the Selfnest user pool")
    clients = [cognito.describe_user_pool_client(UserPoolId=pool_id, ClientId=client["ClientId"])["UserPoolClient"]
               for client in cognito.list_user_pool_clients(UserPoolId=pool_id)["UserPoolClients"]]
    mobile = _only([client["ClientId"] for client in clients if "ClientSecret" not in client],
                   "the public (mobile) app client")
    gateway = aws_client("apigatewayv2", endpoint=endpoint, region=region)
    api_id, stage = next((item["ApiId"], gateway.get_stages(ApiId=item["ApiId"])["Items"][0]["StageName"])
                         for item in gateway.get_apis()["Items"] if item["ProtocolType"] == "WEBSOCKET")
    sns = aws_client("sns", endpoint=endpoint, region=region)
    topic = _only([topic["TopicArn"] for topic in sns.list_topics()["Topics"]
                   if topic["TopicArn"].endswith(f"selfnest-{environment}-session-events")], "the session topic")
    port = endpoint.rsplit(":", 1)[1]
    return Endpoints(environment=environment, region=region, emulator=endpoint, api=api,
                     chat=f"ws://127.0.0.1:{port}/_aws/execute-api/{api_id}/{stage}", user_pool_id=pool_id,
                     mobile_client_id=mobile, session_events_topic_arn=topic,
                     not_emulated=[f"{item.stack}/{item.logical_id} ({item.resource_type}): {item.reason}"
                                   for item in omissions])


def up(*, environment: str, state: Path, port: int | None, say: Any = print) -> Endpoints:
    """Both apps: Selfnest into MiniStack, then BabyBloom (local/babybloom.py); everything stops if any part fails."""
    from refarch.stacks.selfnest.config import load_settings

    registry = Registry(state)
    running = registry.running()
    if running:
        raise LocalError(f"already up ({', '.join(f'{p.name} pid {p.pid}' for p in running)}): "
                         "`make down` first, or `make demo` to use it")
    if registry.load() or (state / "endpoints.json").exists():
        say(f"cleaning up {state} left by a run that did not stop cleanly")
        registry.stop_all()
        shutil.rmtree(state)
    state.mkdir(parents=True, exist_ok=True)
    region = load_settings(environment).region
    if port is not None and not port_is_free(port):
        raise LocalError(f"port {port} on 127.0.0.1 is in use: stop what holds it or pick another with "
                         "`make up LOCAL_PORT=...`")
    database = LocalPostgres(state / "postgres", port=free_port())
    database.check_reachable()
    try:
        say(f"synthesizing Selfnest {environment} ...")
        synthesize(environment, state / "synth")
        endpoint = start_emulator(registry, port=port or free_port(), region=region)
        say(f"MiniStack on {endpoint}; deploying with the CDK CLI (log: {state / 'deploy.log'}) ...")
        omissions = localize(state / "synth", state / "cdk.out", emulator_url=endpoint)
        deploy(state / "cdk.out", endpoint=endpoint, region=region, log=state / "deploy.log")
        database.start(registry)
        api = start_api(registry, environment=environment, endpoint=endpoint, region=region, database=database)
        endpoints = describe(environment=environment, endpoint=endpoint, region=region, api=api,
                             omissions=omissions)
        endpoints.save(state)
        # Selfnest's environments (config/) and BabyBloom's stacks (Pulumi.<stack>.yaml) need not match: lab has no
        # BabyBloom stack, so it runs beside BabyBloom's dev.
        stack = environment if (ROOT / f"Pulumi.{environment}.yaml").is_file() else "dev"
        say(f"BabyBloom {stack}: cosmosdb-server, Azurite and the Functions app with the offline plan's app "
            "settings ...")
        babybloom.up(registry, stack=stack).save(state)
        return endpoints
    except BaseException:
        registry.stop_all()   # Ctrl-C or a failure half-way: nothing stays running
        raise


def aws_client(service: str, *, endpoint: str, region: str) -> Any:
    """A client of the emulator, with its placeholder credentials (never the user's own)."""
    return boto3.client(service, endpoint_url=endpoint, region_name=region,  # type: ignore[call-overload]
                        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


def _only(found: list[_Found], what: str) -> _Found:
    if len(found) != 1:
        raise LocalError(f"expected one {what} in the emulator, found {len(found)}")
    return found[0]
