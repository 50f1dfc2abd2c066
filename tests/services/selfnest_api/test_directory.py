"""The therapist directory: approved therapists publish a profile; signed-in users browse the published ones."""

from __future__ import annotations

import time

from tests.services.tokens import claims_of, signed_with_pool_key

from .conftest import RunningApi
from .people import Identity, book, listed_therapist, profile, slot, unique

ROSTER_SECONDS = 1.1   # THERAPIST_ROSTER_SECONDS in the tests' environment, plus a margin


def directory_ids(api: RunningApi, token: str, query: str = "") -> list[str]:
    reply = api.client.get(f"/therapists{query}", token=token)
    assert reply.status == 200, reply.body
    return [entry["id"] for entry in reply.body["therapists"]]


def test_only_published_profiles_are_listed(api: RunningApi, identity: Identity) -> None:
    published = listed_therapist(identity, api.client, display_name="Dr. Listed")
    approved_but_silent = identity.therapist(unique("therapist"))
    client = identity.client(unique("client"))
    ids = directory_ids(api, client.access_token)
    assert published.sub in ids
    assert approved_but_silent.sub not in ids
    [entry] = [entry for entry in api.client.get("/therapists", token=client.access_token).body["therapists"]
               if entry["id"] == published.sub]
    assert entry == {"id": published.sub, **profile(display_name="Dr. Listed")}


def test_publishing_again_updates_the_profile(api: RunningApi, identity: Identity) -> None:
    therapist = listed_therapist(identity, api.client)
    reply = api.client.put("/therapists/me", profile(bio="Now also couples therapy.", languages=["fr"]),
                           token=therapist.access_token)
    assert reply.status == 200
    assert (reply.body["bio"], reply.body["languages"]) == ("Now also couples therapy.", ["fr"])


def test_the_directory_filters_by_language(api: RunningApi, identity: Identity) -> None:
    speaks_portuguese = listed_therapist(identity, api.client, languages=["pt-BR"])
    speaks_german = listed_therapist(identity, api.client, languages=["de"])
    ids = directory_ids(api, speaks_german.access_token, "?language=pt-BR")
    assert speaks_portuguese.sub in ids
    assert speaks_german.sub not in ids


def test_a_therapist_who_loses_their_rights_is_no_longer_listed_bookable_or_cancelling(
        api: RunningApi, identity: Identity) -> None:
    leaving, client = listed_therapist(identity, api.client), identity.client(unique("client"))
    session = book(api.client, who=client, therapist=leaving, starts_at=slot(hours_ahead=70)).body
    username = leaving.username
    identity.cognito.admin_remove_user_from_group(UserPoolId=identity.pool_id, Username=username,
                                                  GroupName="therapists")
    time.sleep(ROSTER_SECONDS)     # the roster the API keeps ages out
    assert leaving.sub not in directory_ids(api, client.access_token)
    reply = book(api.client, who=identity.client(unique("client")), therapist=leaving, starts_at=slot(hours_ahead=71))
    assert (reply.status, reply.detail) == (404, "therapist_id: no therapist with this id is listed in the directory")
    # Their next token carries no therapist group: no cancelling a client's session as its therapist.
    demoted = signed_with_pool_key({**claims_of(leaving.access_token), "cognito:groups": []})
    refused = api.client.delete(f"/sessions/{session['id']}", token=demoted)
    assert (refused.status, refused.detail) == (403, "cancelling as the therapist needs membership of the "
                                                     "therapists group")


def test_a_therapist_without_mfa_is_not_listed(api: RunningApi, identity: Identity) -> None:
    unprotected = identity.therapist(unique("therapist"), mfa=False)
    assert api.client.put("/therapists/me", profile(), token=unprotected.access_token).status == 201
    client = identity.client(unique("client"))
    assert unprotected.sub not in directory_ids(api, client.access_token)
