"""The booking API: its routes, and the service that wires settings, database, token verifier and outbox together."""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from datetime import UTC, datetime

import boto3
import uvicorn
from botocore.config import Config

from . import logs
from .auth import CLIENTS, THERAPISTS, TokenVerifier
from .bookings import BookingLimits, BookingStore
from .database import Database, login_for
from .errors import NotFoundError, ServiceUnavailableError
from .http import PUBLIC, SIGNED_IN, Request, Response, Route, Router, build_app
from .inputs import BookingBody, SessionQuery, TherapistProfileBody, TherapistQuery, parse_body, parse_query
from .outbox import OutboxRelay
from .roster import TherapistRoster
from .settings import Settings

# Fail fast rather than hold a request thread: the outbox relay retries whatever SNS did not take.
AWS_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 2})
# Connections (and requests on them) one task takes at once; beyond, uvicorn answers 503 at once instead of queueing.
MAX_CONNECTIONS = 200
WORKER_THREADS = 16             # handlers running at once (each holds at most one of the pool's connections)
# Longer than the ALB's 60 s idle timeout, so the load balancer, not the task, closes idle keep-alive connections
# (otherwise a request can race the close and get a 502).
KEEP_ALIVE_SECONDS = 65
MAX_HEADER_BYTES = 16 * 1024
SHUTDOWN_GRACE_SECONDS = 20     # in-flight requests may finish; ECS sends SIGKILL 30 s after SIGTERM


class BookingApi:
    """Route handlers; each gets a Request the router has already authenticated and authorized."""

    def __init__(self, *, store: BookingStore, database: Database) -> None:
        self._store = store
        self._database = database

    def routes(self) -> list[Route]:
        return [
            Route(method="GET", pattern="/healthz", handler=self.health, groups=PUBLIC),
            Route(method="GET", pattern="/readyz", handler=self.readiness, groups=PUBLIC),
            Route(method="GET", pattern="/therapists", handler=self.list_therapists, groups=SIGNED_IN),
            Route(method="PUT", pattern="/therapists/me", handler=self.publish_profile,
                  groups=frozenset({THERAPISTS}), takes_body=True),
            Route(method="GET", pattern="/sessions", handler=self.list_sessions,
                  groups=frozenset({CLIENTS, THERAPISTS})),
            Route(method="POST", pattern="/sessions", handler=self.book_session, groups=frozenset({CLIENTS}),
                  takes_body=True),
            Route(method="DELETE", pattern="/sessions/{session_id}", handler=self.cancel_session, groups=SIGNED_IN),
        ]

    def health(self, request: Request) -> Response:
        """The load balancer's check: the process answers. Deliberately not the database (see /readyz)."""
        return Response(status=200, body={"status": "ok"})

    def readiness(self, request: Request) -> Response:
        try:
            with self._database.connection() as connection:
                connection.execute("SELECT 1")
        except Exception as error:  # any failure means "not ready"
            raise ServiceUnavailableError("the database is not reachable") from error
        return Response(status=200, body={"status": "ready"})

    def list_therapists(self, request: Request) -> Response:
        query = parse_query(TherapistQuery, request.query)
        return Response(status=200, body={"therapists": self._store.directory(language=query.language)})

    def publish_profile(self, request: Request) -> Response:
        profile = parse_body(TherapistProfileBody, request.body)
        published, created = self._store.publish_profile(therapist=request.signed_in, profile=profile)
        return Response(status=201 if created else 200, body=published)

    def list_sessions(self, request: Request) -> Response:
        query = parse_query(SessionQuery, request.query)
        sessions, next_after = self._store.sessions_of(
            caller=request.signed_in, status=query.status, limit=int(query.limit) if query.limit else None,
            after=uuid.UUID(query.after) if query.after else None)
        return Response(status=200, body={"sessions": sessions, "next_after": next_after})

    def book_session(self, request: Request) -> Response:
        booking = parse_body(BookingBody, request.body)
        session = self._store.book(client=request.signed_in, booking=booking, now=datetime.now(UTC))
        return Response(status=201, body=session, headers={"Location": f"/sessions/{session['id']}"})

    def cancel_session(self, request: Request) -> Response:
        try:
            session_id = uuid.UUID(request.path_parameters["session_id"])
        except ValueError:
            raise NotFoundError("no session with this id among your sessions") from None
        return Response(status=200, body=self._store.cancel(caller=request.signed_in, session_id=session_id,
                                                            now=datetime.now(UTC)))


class ApiService:
    """Everything one task runs: the HTTP server, the database pool and the outbox relay."""

    def __init__(self, *, settings: Settings, host: str = "0.0.0.0", outbox_retry_seconds: float = 5.0) -> None:  # noqa: S104 - a container listens on all interfaces
        self.database = Database(settings=settings, login=login_for(settings, client_config=AWS_CLIENT_CONFIG))
        self.outbox = OutboxRelay(database=self.database, topic_arn=settings.session_events_topic_arn,
                                  sns=boto3.client("sns", region_name=settings.topic_region, config=AWS_CLIENT_CONFIG),
                                  retry_seconds=outbox_retry_seconds)
        verifier = TokenVerifier(issuer=settings.token_issuer, client_ids=settings.user_pool_client_ids,
                                 jwks_url=settings.cognito_jwks_url)
        roster = TherapistRoster(
            cognito=boto3.client("cognito-idp", region_name=settings.region, config=AWS_CLIENT_CONFIG),
            user_pool_id=settings.user_pool_id, cache_seconds=settings.therapist_roster_seconds)
        limits = BookingLimits(max_open_bookings=settings.max_open_bookings,
                               changes_per_hour=settings.booking_changes_per_hour,
                               sessions_page_size=settings.sessions_page_size)
        api = BookingApi(store=BookingStore(database=self.database, outbox=self.outbox, roster=roster, limits=limits),
                         database=self.database)
        self._settings = settings
        self._socket = socket.create_server((host, settings.port), backlog=MAX_CONNECTIONS)
        self._server = uvicorn.Server(uvicorn.Config(
            build_app(Router(routes=api.routes(), verifier=verifier), worker_threads=WORKER_THREADS),
            lifespan="on", limit_concurrency=MAX_CONNECTIONS, timeout_keep_alive=KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS, h11_max_incomplete_event_size=MAX_HEADER_BYTES,
            server_header=False, access_log=False, log_config=None, proxy_headers=False, http="h11"))
        # uvicorn's access line quotes the raw path and query string; ours (http.py) names the route pattern only.
        logging.getLogger("uvicorn.access").disabled = True
        self._serving: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def start(self) -> None:
        """Open the pool, start relaying and serving (in a background thread). Migrations are not the API's job:
        it signs in as the application role, which may not change the schema (`python -m selfnest_api migrate`)."""
        with self.database.connect_outside_pool():
            pass   # one direct attempt first: an unreachable database or a refused login fails fast, in one line
        self.database.open()
        self.outbox.start()
        self._serving = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, name="http",
                                         daemon=True)
        self._serving.start()
        while not self._server.started:
            if not self._serving.is_alive():
                raise RuntimeError("the HTTP server stopped while starting")
            time.sleep(0.01)
        logs.info("serving", port=self.port)

    def stop(self) -> None:
        """Stop taking requests, let in-flight ones finish, let the relay finish its round, close the pool."""
        if self._serving is not None:
            self._server.should_exit = True
            self._serving.join()
        self._socket.close()
        self.outbox.stop()
        self.database.close()
        logs.info("stopped")
