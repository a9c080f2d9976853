"""The OpenAPI 3.0 document of the whole server API, served at ``GET /api/v1/openapi.json``.

One document for every route a client may call: the ingest API (:mod:`seetrain_server.ingest`,
wire format in :mod:`seetrain_server.protocol`), health checks (:mod:`seetrain_server.health`),
the admin API (:mod:`seetrain_server.admin`) and the dashboard's read API. Request schemas are
as strict as the server (unknown fields refused), so a generator of requests from this document
(the fuzz tests) explores what the server must answer without a 5xx.
"""

from __future__ import annotations

import copy
from typing import Any

from .protocol import MEDIA_FORMATS, RUN_STATUSES

__all__ = ["openapi_document"]

_INT64_MAX = 2**63 - 1
_BASE64 = {"type": "string", "format": "byte"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return _json(_ref("Error"), description)


_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "string", "description": "what went wrong and the way out"}},
    },
    "Run": {
        "type": "object", "additionalProperties": False, "required": ["project"],
        "properties": {
            "project": {"type": "string", "minLength": 1, "maxLength": 256},
            "name": {"type": "string", "maxLength": 1024},
            "description": {"type": "string", "nullable": True},
            "group": {"type": "string", "nullable": True, "maxLength": 1024},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 1024}, "maxItems": 256},
            "config": {"type": "object", "additionalProperties": True},
            "created_at": {"type": "number", "description": "seconds since the epoch"},
            "host": {"type": "string", "nullable": True},
            "pid": {"type": "integer", "minimum": 0, "nullable": True},
        },
    },
    "RunStored": {
        "type": "object", "required": ["run", "project"],
        "properties": {"run": {"type": "string"}, "project": {"type": "string"}},
    },
    "ScalarChunk": {
        "type": "object", "additionalProperties": False, "required": ["key", "steps", "values", "times"],
        "description": "one key's points: three packed little-endian arrays of equal length (base64)",
        "properties": {
            "key": {"type": "string", "minLength": 1, "maxLength": 256},
            "steps": {**_BASE64, "description": "int64 LE, each 0 .. 2**63-1"},
            "values": {**_BASE64, "description": "float64 LE (NaN and infinities allowed)"},
            "times": {**_BASE64, "description": "float64 LE, wall time in seconds since the epoch"},
        },
    },
    "MediaItem": {
        "type": "object", "additionalProperties": False, "required": ["key", "step", "kind"],
        "description": "an image or audio file (data, base64) or a text (text)",
        "properties": {
            "key": {"type": "string", "minLength": 1, "maxLength": 256},
            "step": {"type": "integer", "minimum": 0, "maximum": _INT64_MAX},
            "index": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1, "default": 0},
            "kind": {"type": "string", "enum": list(MEDIA_FORMATS)},
            "format": {"type": "string", "enum": sorted({f for fs in MEDIA_FORMATS.values() for f in fs})},
            "data": _BASE64,
            "text": {"type": "string"},
            "caption": {"type": "string", "nullable": True},
            "meta": {"type": "object", "nullable": True, "additionalProperties": True},
            "time": {"type": "number", "nullable": True},
        },
    },
    "Status": {
        "type": "object", "additionalProperties": False, "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": list(RUN_STATUSES)},
            "error": {"type": "string", "nullable": True},
            "time": {"type": "number", "nullable": True},
        },
    },
    "FileEntry": {
        "type": "object", "additionalProperties": False, "required": ["kind", "path"],
        "properties": {
            "kind": {"type": "string"}, "path": {"type": "string"},
            "meta": {"type": "object", "nullable": True, "additionalProperties": True},
            "time": {"type": "number", "nullable": True},
        },
    },
    "Batch": {
        "type": "object", "additionalProperties": False, "required": ["source", "seq"],
        "description": "one batch of a run, stored once per (run, source, seq), all or nothing",
        "properties": {
            "source": {"type": "string", "minLength": 1, "maxLength": 1024,
                       "description": "the sending process, e.g. host-pid-random"},
            "seq": {"type": "integer", "minimum": 0, "maximum": _INT64_MAX},
            "scalars": {"type": "array", "items": _ref("ScalarChunk")},
            "media": {"type": "array", "items": _ref("MediaItem")},
            "config": {"type": "object", "additionalProperties": True, "description": "replaces the run's config"},
            "summary": {"type": "object", "additionalProperties": True,
                        "description": "replaces the run's summary"},
            "status": _ref("Status"),
            "files": {"type": "array", "items": _ref("FileEntry")},
            "heartbeat": {"type": "number", "description": "the client's time the run was last alive"},
        },
    },
    "BatchStored": {
        "type": "object", "required": ["stored", "max_seq"],
        "properties": {
            "stored": {"type": "boolean", "description": "false: this (source, seq) was stored before"},
            "max_seq": {"type": "integer", "description": "the highest seq stored for (run, source)"},
        },
    },
    "MaxSeq": {
        "type": "object", "required": ["max_seq"],
        "properties": {"max_seq": {"type": "integer", "minimum": -1, "description": "-1: nothing yet"}},
    },
    "NewUser": {
        "type": "object", "additionalProperties": False, "required": ["name"],
        "properties": {"name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"},
                       "admin": {"type": "boolean", "default": False}},
    },
    "NewKey": {
        "type": "object", "additionalProperties": False, "required": ["user", "project", "role"],
        "properties": {
            "user": {"type": "string"},
            "project": {"type": "string", "description": "a project, or * for every project"},
            "role": {"type": "string", "enum": ["read", "write", "admin"]},
            "label": {"type": "string", "nullable": True, "maxLength": 200},
        },
    },
    "KeyInfo": {
        "type": "object",
        "properties": {
            "id": {"type": "string"}, "user": {"type": "string"}, "label": {"type": "string", "nullable": True},
            "roles": {"type": "object", "additionalProperties": {"type": "string"}},
            "created_at": {"type": "number"}, "revoked_at": {"type": "number", "nullable": True},
        },
    },
}

_RUN_ID = {"name": "run_id", "in": "path", "required": True,
           "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"}}
_AUTH_ERRORS = {"401": _error("no valid API key"),
                "403": _error("the key lacks the role (the same answer whether the run exists or not)")}
_INGEST_ERRORS = {
    **_AUTH_ERRORS,
    "400": _error("the body is not JSON"),
    "413": _error("past a limit of the server's settings (max_body_bytes, max_chunks_per_batch, "
                  "max_points_per_batch), named in the message"),
    "422": _error("a field of the wrong type or value, named in the message"),
    "503": {**_error("the replica is busy (max_concurrent_ingest): retry after Retry-After seconds"),
            "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
}
_ANY_OBJECT = {"type": "object", "additionalProperties": True}


def _paths() -> dict[str, Any]:
    return {
        "/healthz": {"get": {
            "operationId": "healthz", "tags": ["health"], "summary": "liveness (never touches the database)",
            "security": [],
            "responses": {"200": _json({"type": "object", "properties": {"status": {"type": "string",
                                                                                    "enum": ["ok"]}}},
                                       "the process serves requests")}}},
        "/readyz": {"get": {
            "operationId": "readyz", "tags": ["health"], "summary": "readiness: the database answers",
            "security": [],
            "responses": {
                "200": _json({"type": "object", "properties": {"status": {"type": "string"},
                                                               "database": {"type": "string"}}}, "ready"),
                "503": _json({"type": "object", "properties": {"status": {"type": "string"},
                                                               "database": {"type": "string"}}},
                             "not ready (the reason in database)")}}},
        "/api/v1/openapi.json": {"get": {
            "operationId": "openapi", "tags": ["meta"], "summary": "this document", "security": [],
            "responses": {"200": _json(_ANY_OBJECT, "the OpenAPI document")}}},
        "/api/v1/runs/{run_id}": {"put": {
            "operationId": "putRun", "tags": ["ingest"],
            "summary": "create a run or update the fields given (idempotent; write role on the project)",
            "parameters": [_RUN_ID],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Run")}}},
            "responses": {"200": _json(_ref("RunStored"), "the run as stored"),
                          "409": _error("the run belongs to another project"), **_INGEST_ERRORS}}},
        "/api/v1/runs/{run_id}/batches": {
            "post": {
                "operationId": "postBatch", "tags": ["ingest"],
                "summary": "store one batch of a run, once per (source, seq) (write role on the run's project)",
                "parameters": [_RUN_ID],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Batch")}}},
                "responses": {"200": _json(_ref("BatchStored"), "stored now, or stored before"),
                              "404": _error("no such run (only to a key with write on every project)"),
                              **_INGEST_ERRORS}},
            "get": {
                "operationId": "getMaxSeq", "tags": ["ingest"],
                "summary": "the highest seq stored for a source (read role), where an uploader resumes",
                "parameters": [_RUN_ID, {"name": "source", "in": "query", "required": True,
                                         "schema": {"type": "string", "minLength": 1}}],
                "responses": {"200": _json(_ref("MaxSeq"), "the highest seq stored, -1 for none"),
                              "404": _error("no such run (only to a key with read on every project)"),
                              "422": _error("no source given"), **_AUTH_ERRORS}}},
        "/api/v1/admin/users": {"post": {
            "operationId": "addUser", "tags": ["admin"], "summary": "add a user (admin on *)",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("NewUser")}}},
            "responses": {"201": _json({"type": "object", "properties": {"user": {"type": "string"}}},
                                       "the user was added"),
                          "409": _error("the name is taken"), "422": _error("a bad field"), **_AUTH_ERRORS}}},
        "/api/v1/admin/keys": {
            "post": {
                "operationId": "createKey", "tags": ["admin"],
                "summary": "a new API key holding a role on a project (shown only in this answer)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("NewKey")}}},
                "responses": {"201": _json({"type": "object", "properties": {
                    "key": {"type": "string", "pattern": "^stk_"}, "id": {"type": "string"}}}, "the new key"),
                    "404": _error("no such user"), "422": _error("a bad field"), **_AUTH_ERRORS}},
            "get": {
                "operationId": "listKeys", "tags": ["admin"], "summary": "every key (never a secret or a hash)",
                "responses": {"200": _json({"type": "object", "properties": {
                    "keys": {"type": "array", "items": _ref("KeyInfo")}}}, "the keys"), **_AUTH_ERRORS}}},
        "/api/v1/admin/keys/{key_id}": {"delete": {
            "operationId": "revokeKey", "tags": ["admin"], "summary": "revoke a key",
            "parameters": [{"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _json({"type": "object", "properties": {"revoked": {"type": "string"}}},
                                       "revoked (also when it was already)"),
                          "404": _error("no such key"), **_AUTH_ERRORS}}},
        "/api/projects": {"get": {
            "operationId": "listProjects", "tags": ["read"], "summary": "the projects the key may read",
            "responses": {"200": _json(_ANY_OBJECT, "the projects"), **_AUTH_ERRORS}}},
        "/api/projects/{project}/runs": {"get": {
            "operationId": "listRuns", "tags": ["read"], "summary": "the runs of a project",
            "parameters": [{"name": "project", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _json(_ANY_OBJECT, "the runs"), "404": _error("no such project"),
                          **_AUTH_ERRORS}}},
        "/api/runs/{run}": {"get": {
            "operationId": "getRun", "tags": ["read"], "summary": "one run: status, config, summary, keys",
            "parameters": [{"name": "run", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _json(_ANY_OBJECT, "the run"), "404": _error("no such run"), **_AUTH_ERRORS}}},
        "/api/runs/{run}/scalars": {"get": {
            "operationId": "getScalars", "tags": ["read"],
            "summary": "scalar series, downsampled to a min/max envelope of at most max_points",
            "parameters": [
                {"name": "run", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "key", "in": "query", "required": True, "style": "form", "explode": True,
                 "schema": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
                 "description": "a key, repeated for several: ?key=train/loss&key=val/loss"},
                {"name": "max_points", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 2}},
                {"name": "step_min", "in": "query", "required": False, "schema": {"type": "integer"}},
                {"name": "step_max", "in": "query", "required": False, "schema": {"type": "integer"}},
                {"name": "since_step", "in": "query", "required": False, "schema": {"type": "integer"},
                 "description": "only steps after this one (live updates)"}],
            "responses": {"200": _json(_ANY_OBJECT, "the series"), "400": _error("a bad parameter"),
                          "404": _error("no such run or key"), **_AUTH_ERRORS}}},
        "/api/runs/{run}/media": {"get": {
            "operationId": "getMedia", "tags": ["read"], "summary": "the media of a key (at a step)",
            "parameters": [
                {"name": "run", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "key", "in": "query", "required": True, "schema": {"type": "string"}},
                {"name": "step", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}}],
            "responses": {"200": _json(_ANY_OBJECT, "the media items"), "400": _error("a bad parameter"),
                          "404": _error("no such run or key"), **_AUTH_ERRORS}}},
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0 document (a new dict each call: callers may change it)."""
    from . import __version__

    return {
        "openapi": "3.0.3",
        "info": {
            "title": "SeeTrain team server",
            "version": __version__,
            "description": "Ingest (/api/v1), admin (/api/v1/admin), health checks and the dashboard's read "
                           "API (/api). Send an API key as 'Authorization: Bearer stk_...'. Errors answer "
                           '{"error": message}.',
        },
        "paths": _paths(),
        "components": {
            "schemas": copy.deepcopy(_SCHEMAS),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "an API key, stk_<id>_<secret>"}},
        },
        "security": [{"bearer": []}],
    }
