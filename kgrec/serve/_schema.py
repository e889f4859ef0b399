"""Request and response bodies of the HTTP service (pydantic models, bounds in the types).

Imported by :func:`kgrec.serve.create_app` only, so ``import kgrec.serve`` stays free of pydantic.
"""

from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from kgrec.serve._protocol import MAX_HISTORY, MAX_K, MAX_TEXT_CHARS, NewItem

#: most new items one POST /items may carry
MAX_BATCH = 256
#: most attributes of one new item, and values per attribute
MAX_ATTRIBUTES = 64
MAX_VALUES = 256

Id = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]
Value = Annotated[str, StringConstraints(max_length=1000)] | int | float
K = Annotated[int, Field(ge=1, le=MAX_K, description=f"results to return (1..{MAX_K})")]


class ItemIn(BaseModel):
    """A new (cold) item: title, optional description and attributes matched to the KG."""

    model_config = ConfigDict(extra="forbid")
    id: Id | None = Field(None, description="optional id (default: new-N)")
    title: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS)]
    description: Text = ""
    attributes: Annotated[
        dict[Id, Value | Annotated[list[Value], Field(max_length=MAX_VALUES)]],
        Field(max_length=MAX_ATTRIBUTES),
    ] = Field(
        default_factory=dict,
        description="catalog column, relation or entity type -> value(s), e.g. "
        '{"class": ["Sci-Fi"], "release_year": 1997}',
    )

    def to_item(self) -> NewItem:
        return NewItem.from_dict(self.model_dump(exclude_none=True))


class RecommendIn(BaseModel):
    """A known ``user`` id, or a new user's ``history`` item ids and/or free ``text``."""

    model_config = ConfigDict(extra="forbid")
    user: Id | None = None
    history: Annotated[list[Id], Field(max_length=MAX_HISTORY)] = Field(default_factory=list)
    text: Text | None = None
    attributes: Annotated[
        dict[Id, Value | Annotated[list[Value], Field(max_length=MAX_VALUES)]],
        Field(max_length=MAX_ATTRIBUTES),
    ] = Field(default_factory=dict, description='a new user\'s profile, e.g. {"gender": "F"}')
    k: K = 10
    exclude_known: bool = True

    @model_validator(mode="after")
    def _one_query(self) -> Self:
        new = bool(self.history) or bool(self.text and self.text.strip()) or bool(self.attributes)
        if (self.user is None) == (not new):
            raise ValueError(
                "give exactly one of: user, or history, non-empty text and/or attributes"
            )
        return self


class NeighborsIn(BaseModel):
    """A known ``item_id`` or a new ``item`` row (embedded, not added)."""

    model_config = ConfigDict(extra="forbid")
    item_id: Id | None = None
    item: ItemIn | None = None
    k: K = 10
    users_k: Annotated[int, Field(ge=0, le=MAX_K)] = 10

    @model_validator(mode="after")
    def _one_item(self) -> Self:
        if (self.item_id is None) == (self.item is None):
            raise ValueError("give exactly one of item_id or item")
        return self


class AddIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: Annotated[list[ItemIn], Field(min_length=1, max_length=MAX_BATCH)]


class EventIn(BaseModel):
    """Interactions of one user with known or added items (optional one ``rating``), and/or
    their profile ``attributes`` / free ``text`` (read by a model's new-user path)."""

    model_config = ConfigDict(extra="forbid")
    items: Annotated[list[Id], Field(max_length=MAX_HISTORY)] = Field(default_factory=list)
    rating: Annotated[float, Field(allow_inf_nan=False)] | None = None
    attributes: Annotated[
        dict[Id, Value | Annotated[list[Value], Field(max_length=MAX_VALUES)]],
        Field(max_length=MAX_ATTRIBUTES),
    ] = Field(
        default_factory=dict, description='profile, e.g. {"age_band": "25-34", "gender": "F"}'
    )
    text: Text | None = None


class EventOut(BaseModel):
    user_id: str
    seq: int
    events: int


class HitOut(BaseModel):
    id: str
    score: float
    title: str | None = None


class NeighborsOut(BaseModel):
    item_id: str | None
    items: list[HitOut]
    users: list[HitOut]
    matched: list[str]
    unmatched: list[str]


class RecommendOut(BaseModel):
    user_id: str | None
    items: list[HitOut]
    masked: int


class AddedOut(BaseModel):
    id: str
    matched: list[str]
    unmatched: list[str]


class AddOut(BaseModel):
    added: list[AddedOut]
    items: int


class ItemOut(BaseModel):
    id: str
    title: str | None
    added: bool


class HealthOut(BaseModel):
    status: str
    model: str
    fingerprint: str
    items: int
    added_items: int
    users: int
    index: dict[str, Any]
    uptime_s: float


class ErrorOut(BaseModel):
    """The body of every 4xx/5xx other than a validation error."""

    detail: str


class ValidationIssue(BaseModel):
    type: str
    loc: list[str | int]
    msg: str


class ValidationErrorOut(BaseModel):
    """A 422: what is wrong and where (``loc``); the offending value is never echoed."""

    detail: list[ValidationIssue] | str


class ReadyOut(BaseModel):
    status: str
    ready: bool
