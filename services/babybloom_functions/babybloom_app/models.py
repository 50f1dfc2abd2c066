"""What clients may send. Strict: wrong types are refused rather than coerced, unknown fields are refused."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

# What the app can chart and what the mobile client offers as chips; anything else is refused.
Symptom = Literal[
    "back_pain",
    "breast_tenderness",
    "constipation",
    "contractions",
    "cramps",
    "dizziness",
    "fatigue",
    "food_cravings",
    "frequent_urination",
    "headache",
    "heartburn",
    "insomnia",
    "mood_swings",
    "nausea",
    "shortness_of_breath",
    "spotting",
    "swelling",
    "vomiting",
]
NOTES_MAX_CHARACTERS = 2000
PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX = 20, 100


class _Input(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=False)


class ProfileInput(_Input):
    """Either the due date or the first day of the last menstrual period (the other is derived)."""

    due_date: date | None = Field(default=None, alias="dueDate")
    last_menstrual_period: date | None = Field(default=None, alias="lastMenstrualPeriod")

    @model_validator(mode="after")
    def _exactly_one_date(self) -> ProfileInput:
        if (self.due_date is None) == (self.last_menstrual_period is None):
            raise ValueError("dueDate: give exactly one of dueDate and lastMenstrualPeriod")
        return self


class JournalEntryInput(_Input):
    entry_date: date = Field(alias="date")
    mood: Annotated[int, Field(ge=1, le=5)]
    symptoms: Annotated[list[Symptom], Field(max_length=len(Symptom.__args__))] = Field(default_factory=list)
    notes: Annotated[str, StringConstraints(max_length=NOTES_MAX_CHARACTERS)] = ""

    @model_validator(mode="after")
    def _symptoms_once_each(self) -> JournalEntryInput:
        if len(set(self.symptoms)) != len(self.symptoms):
            raise ValueError("symptoms: each symptom at most once")
        return self


class JournalRangeQuery(_Input):
    """Query parameters of the journal listing (all strings on the wire, so parsed leniently from text)."""

    model_config = ConfigDict(strict=False, extra="forbid", frozen=True)

    start: date = Field(alias="from")
    end: date = Field(alias="to")
    limit: Annotated[int, Field(ge=1, le=PAGE_SIZE_MAX)] = PAGE_SIZE_DEFAULT
    continuation: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> JournalRangeQuery:
        if self.start > self.end:
            raise ValueError("from: must not be after to")
        return self
