"""The therapist directory: approved therapists publish a profile; signed-in users browse the published ones."""

from __future__ import annotations

from .conftest import RunningApi
from .people import Identity, listed_therapist, profile, unique


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
